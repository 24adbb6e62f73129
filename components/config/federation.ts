// WAN federation (issue 15): a primary stack lists the secondary datacenters it issues federation
// material for; a secondary names its primary stack. What can be checked from this stack's own
// config is checked here; what needs the primary's output is checked in components/federation.

import { DNS_LABEL, Reader } from "./read";
import { configSchema } from "./schema";
import type { FederationSettings, Topology } from "./types";

/** Keys a secondary must leave alone: its CA and gossip key are the primary's. */
const PRIMARY_OWNED_KEYS = ["gossipKeyKeeper", "caKeeper", "caPreviousKeeper", "caRotationPhase"] as const;

/** `organization/<project>/<stack>` or `<project>/<stack>` or `<stack>`, as StackReference takes it. */
const STACK_NAME = /^([A-Za-z0-9_.-]+\/){0,2}[A-Za-z0-9_.-]+$/;

export function readFederation(
    r: Reader,
    topology: Topology,
    own: { datacenter: string; stack: string; project: string },
): FederationSettings | undefined {
    const { problems, key } = r;
    const secondaries = r.list("federationSecondaries");
    const primaryStack = r.str("federationPrimaryStack") || undefined;
    if (secondaries.length === 0 && primaryStack === undefined) return undefined;
    const used = secondaries.length > 0 ? "federationSecondaries" : "federationPrimaryStack";
    if (topology !== "vm") {
        problems.add(
            key(used),
            secondaries.length > 0 ? secondaries : primaryStack,
            `WAN federation is built for the vm topology so far, not ${topology} (Kubernetes servers need a WAN-reachable address first); remove it or use topology vm.`,
        );
        return undefined;
    }
    if (secondaries.length > 0 && primaryStack !== undefined) {
        problems.add(
            key("federationPrimaryStack"),
            primaryStack,
            `a stack is either the primary (${key("federationSecondaries")}) or a secondary (federationPrimaryStack), not both; remove one.`,
        );
        return undefined;
    }
    if (primaryStack !== undefined) {
        if (!STACK_NAME.test(primaryStack)) {
            problems.add(
                key("federationPrimaryStack"),
                primaryStack,
                "must name the primary stack as a StackReference does, e.g. organization/consul/dc1.",
            );
        } else if (
            [own.stack, `${own.project}/${own.stack}`].includes(primaryStack) ||
            primaryStack.endsWith(`/${own.project}/${own.stack}`)
        ) {
            problems.add(
                key("federationPrimaryStack"),
                primaryStack,
                "names this stack itself; name the primary datacenter's stack.",
            );
        }
        for (const name of PRIMARY_OWNED_KEYS) {
            // The engine passes Pulumi.yaml's defaults as if set, so only another value is an override.
            if (r.raw[name] !== undefined && r.raw[name] !== configSchema[name].default) {
                problems.add(
                    key(name),
                    r.raw[name],
                    `is set in a secondary datacenter, whose ${name.startsWith("gossip") ? "gossip key" : "CA"} comes from the primary stack (${primaryStack}); remove it here and change it in the primary.`,
                );
            }
        }
        return { role: "secondary", primaryStack };
    }
    const seen = new Set<string>();
    for (const dc of secondaries) {
        if (!DNS_LABEL.test(dc)) {
            problems.add(key("federationSecondaries"), dc, "must be a datacenter name: a DNS label (a-z, 0-9, '-').");
        } else if (dc === own.datacenter) {
            problems.add(
                key("federationSecondaries"),
                dc,
                `is this stack's own datacenter (${key("datacenter")}); list only the secondary datacenters' names.`,
            );
        } else if (seen.has(dc)) {
            problems.add(key("federationSecondaries"), dc, "is listed twice; list each datacenter once.");
        }
        seen.add(dc);
    }
    return { role: "primary", secondaries: [...seen].sort() };
}
