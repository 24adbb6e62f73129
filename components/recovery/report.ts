// What the recovery command prints: one line per server, and the next steps after a recovery.

import type { Host } from "../config";
import type { RecoveryPlan } from "./decide";
import type { Observation } from "./observe";

/** One server as inspected: reachable, agent state, node ID, leader and Raft peers as it sees them. */
export function describeServer(host: Host, o: Observation): string {
    const where = `${host.name} (${host.address})`;
    if (!o.reachable) return `${where}: unreachable over SSH (${o.error ?? "no answer"})`;
    const r = o.report;
    if (!r) return `${where}: answers, but the inspection failed (${o.error ?? "no report"})`;
    const peers = r.raft
        ? r.raft.map((p) => `${p.node || "?"} ${p.address}${p.voter ? "" : " non-voter"}`).join(", ")
        : "unknown";
    return `${where}: reachable, agent ${r.active}, node ID ${r.nodeId ?? "none"}, leader ${r.apiUp ? r.leader || "none" : "unknown (API down)"}, Raft peers: ${peers}`;
}

/**
 * What to do once the survivors have a leader: replace the dead servers through pulumi up. serverHosts
 * (dead ones included) must always hold an odd count: with an even number dead, the new hosts go in
 * with the dead ones in deadHosts, then the dead ones are dropped; with an odd number dead, the dead
 * ones are pruned first, then replaced.
 */
export function nextSteps(plan: RecoveryPlan, stack: string): string {
    const dead = plan.dead.join(", ");
    const n = plan.dead.length;
    const up = `pulumi up --stack ${stack}`;
    const lines = [
        `Next: the cluster has ${plan.survivors.length} server(s); ${dead} are still listed in consul:serverHosts. Run pulumi up soon`,
        "(until then a survivor restarted alone waits for a join that never comes). To get back to full strength:",
    ];
    if (n % 2 === 0) {
        lines.push(
            `  1. add ${n} replacement host(s) to consul:serverHosts (new names; their keys in consul:sshHostKeys), list ${dead}`,
            `     in consul:deadHosts, set consul:serverCount to the new length of serverHosts, and ${up}:`,
            "     the dead servers are pruned without being contacted, the new ones join as voters;",
            `  2. drop ${dead} from consul:serverHosts and consul:deadHosts, set consul:serverCount back, and ${up} again.`,
        );
    } else {
        lines.push(
            `  1. list ${dead} in consul:deadHosts (serverHosts and serverCount as they are) and ${up}:`,
            "     the dead servers are pruned without being contacted;",
            `  2. drop ${dead} from consul:serverHosts and consul:deadHosts, add replacement hosts (new names; their keys in`,
            `     consul:sshHostKeys) so that serverHosts holds an odd count, set consul:serverCount to it, and ${up} again.`,
        );
    }
    lines.push("See docs/runbooks/lost-quorum.md and docs/runbooks/servers.md.");
    return lines.join("\n");
}
