// `parseSettings` is pure: raw strings in, a typed and fully validated Settings object (or every
// problem at once) out, before any resource exists. Each domain has its own reader; the checks
// that span two domains are here.

import { readCommon } from "./common";
import { readDns } from "./dns";
import { readKubernetes } from "./kubernetes";
import { createReader } from "./read";
import { configSchema } from "./schema";
import { readAcl, readTls } from "./security";
import { readAppTokens } from "./app-tokens";
import { readFederation } from "./federation";
import { ConfigError, Settings, TOPOLOGIES } from "./types";
import { checkKubernetesProvider } from "./kubernetes-provider";
import { readSnapshots } from "./snapshot";
import { readVm } from "./vm";

/**
 * Turns raw stack config (key without project prefix → string, as Pulumi stores it) into Settings.
 * Throws ConfigError listing every problem.
 */
export function parseSettings(
    raw: Record<string, string>,
    project: string,
    stack: string,
    context: {
        preview?: boolean;
        secretKeys?: ReadonlySet<string>;
        /** The stack's `kubernetes:` provider config (key without prefix → string), checked on Kubernetes. */
        kubernetesProvider?: Readonly<Record<string, string>>;
    } = {},
): Settings {
    const r = createReader(raw, project, context.secretKeys ?? new Set());
    const { problems, key } = r;

    for (const name of Object.keys(raw)) {
        // Own keys only: "toString" or "__proto__" are not config keys.
        if (!Object.prototype.hasOwnProperty.call(configSchema, name)) {
            const hint = closestKey(name);
            // The value is not shown: a misspelt key may hold a secret (sshPrivatekey, say).
            problems.add(
                key(name),
                "[not shown]",
                `unknown key; ${hint ? `did you mean ${key(hint)}? ` : ""}remove it or use one of the keys in Pulumi.yaml.`,
            );
        }
    }

    const topology = r.oneOf("topology", TOPOLOGIES);
    const usesVms = topology === "vm" || topology === "hybrid";
    const usesKubernetes = topology === "kubernetes" || topology === "hybrid";

    const common = readCommon(r);
    const acl = readAcl(r, stack);
    const tls = readTls(r);
    const kubernetes = usesKubernetes ? readKubernetes(r, common.consulVersion) : undefined;
    const notes: string[] = [];
    const vm = usesVms
        ? readVm(r, topology, {
              stack,
              preview: context.preview ?? false,
              secretKeys: context.secretKeys,
              notes,
          })
        : undefined;

    if (usesKubernetes) checkKubernetesProvider(problems, context.kubernetesProvider ?? {});
    const dns = readDns(r, topology, acl, common.ports);
    const { serverCount } = common;
    const serverCountValid = problems.list.every((p) => !p.startsWith(`${key("serverCount")} `));
    if (
        vm &&
        serverCountValid &&
        serverCount !== undefined &&
        vm.servers.length > 0 &&
        vm.servers.length !== serverCount
    ) {
        problems.add(
            key("serverCount"),
            serverCount,
            `does not match the ${vm.servers.length} entries of ${key("serverHosts")}; set serverCount to ${vm.servers.length} or list ${serverCount} hosts.`,
        );
    }
    if (!usesVms) {
        // Refuses snapshot keys on kubernetes (no VM servers to take them).
        readSnapshots(r, topology, context);
        for (const name of ["serverHosts", "clientHosts"] as const) {
            if (raw[name] !== undefined && r.list(name).length > 0) {
                problems.add(
                    key(name),
                    r.list(name),
                    `is only used by the vm and hybrid topologies, not ${topology}; remove it or change topology.`,
                );
            }
        }
    }
    if (topology === "hybrid" && vm && vm.clients.length > 0) {
        problems.add(
            key("clientHosts"),
            r.list("clientHosts"),
            "the hybrid topology runs client agents in Kubernetes, not on clientHosts; remove clientHosts or use topology vm.",
        );
    }

    const appTokens = readAppTokens(r, topology, acl.enabled);
    const federation = readFederation(r, topology, { datacenter: common.datacenter, stack, project });

    if (problems.list.length > 0) throw new ConfigError(problems.list);

    return {
        project,
        stack,
        topology,
        ...common,
        serverCount: vm ? vm.servers.length : serverCount,
        acl,
        tls,
        kubernetes,
        // Only a stack with DNS on has vm.dns, so every other stack's settings stay as they were.
        vm: vm && dns ? { ...vm, dns } : vm,
        // Only a stack that lists apps has the key, so every other stack's settings stay as they were.
        ...(appTokens.length > 0 ? { appTokens } : {}),
        ...(federation ? { federation } : {}),
        notes,
    };
}

function closestKey(name: string): string | undefined {
    let best: string | undefined;
    let bestDistance = 4;
    for (const candidate of Object.keys(configSchema)) {
        const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
        if (distance < bestDistance) {
            best = candidate;
            bestDistance = distance;
        }
    }
    return best;
}

function editDistance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
        let previous = row[0];
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const current = row[j];
            row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
            previous = current;
        }
    }
    return row[b.length];
}
