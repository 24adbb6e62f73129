// Pure planning for the VM topology: in which order hosts are touched, and what each step waits
// for. No Pulumi resources here, so all of it is unit-testable with plain values.

import type { AgentRole } from "../agent";
import type { Host } from "../config";

/** One host in the rollout and what it waits for. */
export interface RolloutStep {
    /**
     * Resource-name stem, unique: `server-<name>`, `client-<name>`, `acl`, `prune`,
     * `keyring-install`, `keyring-finish`.
     */
    readonly id: string;
    readonly kind: "prune" | "keyring-install" | "server" | "acl" | "client" | "keyring-finish";
    readonly host: Host;
    /** Ids of the steps that must have finished first. */
    readonly after: readonly string[];
    /** Clients: 0-based batch number. */
    readonly batch?: number;
    /** Servers: the last one waits for a leader even on a first deploy. */
    readonly isLastServer?: boolean;
}

/**
 * With dead hosts, first their prune on the first server (a dead voter would keep autopilot from
 * reporting healthy, and every later step waits for that). Then the gossip key joins every
 * member's keyring (keyring-install), so that no agent the rollout touches holds a key the others
 * lack. Then servers one at a time in the configured order, then (with ACLs) the policy and agent
 * token on the first server, then clients in batches of `clientBatchSize`; every client in batch k
 * waits for every client in batch k-1. Last, keyring-finish makes the key the only one. The
 * leader is not known here: each server's script checks at run time whether it is the leader and
 * hands leadership over before it restarts.
 */
export function planRollout(
    servers: readonly Host[],
    clients: readonly Host[],
    clientBatchSize: number,
    aclEnabled: boolean,
    pruneDeadHosts = false,
): RolloutStep[] {
    if (servers.length === 0) throw new Error("the VM topology needs at least one server");
    if (clientBatchSize < 1) throw new Error("clientBatchSize must be at least 1");
    const steps: RolloutStep[] = [];
    let previous: string[] = [];
    if (pruneDeadHosts) {
        steps.push({ id: "prune", kind: "prune", host: servers[0], after: [] });
        previous = ["prune"];
    }
    steps.push({ id: "keyring-install", kind: "keyring-install", host: servers[0], after: previous });
    previous = ["keyring-install"];
    servers.forEach((host, i) => {
        const id = ownerId("server", host);
        steps.push({ id, kind: "server", host, after: previous, isLastServer: i === servers.length - 1 });
        previous = [id];
    });
    if (aclEnabled) {
        steps.push({ id: "acl", kind: "acl", host: servers[0], after: previous });
        previous = ["acl"];
    }
    for (let start = 0, batch = 0; start < clients.length; start += clientBatchSize, batch++) {
        const ids: string[] = [];
        for (const host of clients.slice(start, start + clientBatchSize)) {
            const id = ownerId("client", host);
            steps.push({ id, kind: "client", host, after: previous, batch });
            ids.push(id);
        }
        previous = ids;
    }
    steps.push({ id: "keyring-finish", kind: "keyring-finish", host: servers[0], after: previous });
    return steps;
}

/** The id of the resource that owns a host's agent; the same as its rollout step id. */
export function ownerId(role: AgentRole, host: Host): string {
    return `${role}-${host.name}`;
}
