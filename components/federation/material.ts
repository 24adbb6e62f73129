// Pure: what a federation primary exports (the secret stack output `federation`) and the checks a
// secondary makes on it before anything is deployed.

import { Problems } from "../config/read";

/** The stack output a primary exports and its secondaries read through a StackReference. */
export const FEDERATION_OUTPUT = "federation";

/** The primary's `federation` output (a secret as a whole). */
export interface FederationExport {
    readonly datacenter: string;
    readonly domain: string;
    readonly aclEnabled: boolean;
    /** The primary's root CA: every agent of every datacenter trusts it. */
    readonly caCertPem: string;
    readonly gossipKey: string;
    /** Empty with ACLs off. */
    readonly replicationToken: string;
    /** The primary's servers as retry_join_wan takes them (`<address>:<serf WAN port>`). */
    readonly wanJoin: readonly string[];
    /** One intermediate CA per secondary datacenter, signed by the root. */
    readonly intermediates: Readonly<Record<string, { readonly certPem: string; readonly keyPem: string }>>;
}

/** What one secondary takes from the export: the shared parts and its own intermediate CA. */
export interface PrimaryMaterial {
    readonly primaryDatacenter: string;
    readonly caCertPem: string;
    readonly gossipKey: string;
    readonly replicationToken: string;
    readonly wanJoin: readonly string[];
    readonly intermediate: { readonly certPem: string; readonly keyPem: string };
}

/** The secondary's own facts the export is checked against. */
export interface SecondaryFacts {
    readonly project: string;
    readonly datacenter: string;
    readonly domain: string;
    readonly aclEnabled: boolean;
    readonly primaryStack: string;
}

function isExport(value: unknown): value is FederationExport {
    const v = value as Partial<FederationExport> | undefined;
    return (
        typeof v === "object" &&
        v !== null &&
        typeof v.datacenter === "string" &&
        typeof v.caCertPem === "string" &&
        typeof v.gossipKey === "string" &&
        Array.isArray(v.wanJoin) &&
        typeof v.intermediates === "object" &&
        v.intermediates !== null
    );
}

/**
 * Checks the primary's export against this secondary; every problem names the key to change. The
 * export's secrets are never part of a message.
 */
export function checkFederationExport(
    exported: unknown,
    own: SecondaryFacts,
): { material?: PrimaryMaterial; problems: readonly string[] } {
    const problems = new Problems();
    const key = (name: string) => `${own.project}:${name}`;
    const stackKey = key("federationPrimaryStack");
    if (!isExport(exported) || !(own.datacenter in exported.intermediates)) {
        const exportsNone = !isExport(exported) || Object.keys(exported.intermediates).length === 0;
        problems.add(
            stackKey,
            own.primaryStack,
            exportsNone
                ? `the stack exports no federation material (its ${FEDERATION_OUTPUT} output is empty or missing); add "${own.datacenter}" to ${key("federationSecondaries")} there, run pulumi up on it, then run this stack's.`
                : `the stack federates ${Object.keys(exported.intermediates).sort().join(", ")}, not ${own.datacenter}; add "${own.datacenter}" to ${key("federationSecondaries")} there and run pulumi up on it first.`,
        );
        return { problems: problems.list };
    }
    if (exported.datacenter === own.datacenter) {
        problems.add(
            key("datacenter"),
            own.datacenter,
            `is the primary's datacenter name too (stack ${own.primaryStack}); every datacenter of a federation needs its own name.`,
        );
    }
    if (exported.domain !== own.domain) {
        problems.add(
            key("domain"),
            own.domain,
            `differs from the primary's (${exported.domain}, stack ${own.primaryStack}); federated datacenters share one domain, so set it to ${exported.domain}.`,
        );
    }
    if (exported.aclEnabled !== own.aclEnabled) {
        problems.add(
            key("aclEnabled"),
            own.aclEnabled,
            `the primary (stack ${own.primaryStack}) has ACLs ${exported.aclEnabled ? "on" : "off"}; federated datacenters need ACLs on in all or none, so set it to ${exported.aclEnabled}.`,
        );
    }
    if (problems.list.length > 0) return { problems: problems.list };
    return {
        material: {
            primaryDatacenter: exported.datacenter,
            caCertPem: exported.caCertPem,
            gossipKey: exported.gossipKey,
            replicationToken: exported.replicationToken,
            wanJoin: [...exported.wanJoin],
            intermediate: exported.intermediates[own.datacenter],
        },
        problems: [],
    };
}
