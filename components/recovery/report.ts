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

/** What to do once the survivors have a leader: replace the dead servers through pulumi up. */
export function nextSteps(plan: RecoveryPlan, stack: string): string {
    const dead = plan.dead.join(", ");
    return [
        `Next: the cluster has ${plan.survivors.length} server(s); ${dead} are still listed in consul:serverHosts. Run pulumi up soon`,
        "(until then a survivor restarted alone waits for a join that never comes). To get back to full strength:",
        `  1. add the replacement hosts to consul:serverHosts (new names) and their keys to consul:sshHostKeys,`,
        `     list ${dead} in consul:deadHosts, set consul:serverCount to the new length of serverHosts, and`,
        `     pulumi up --stack ${stack}   (the dead servers are pruned, never contacted; the new ones join as voters)`,
        `  2. then drop ${dead} from consul:serverHosts and consul:deadHosts, set consul:serverCount back, and pulumi up again.`,
        "See docs/runbooks/lost-quorum.md and docs/runbooks/servers.md.",
    ].join("\n");
}
