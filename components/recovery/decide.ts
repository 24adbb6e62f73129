// Whether a lost quorum can be recovered with peers.json, from what every server reported: the one
// place that decides. It refuses (with every reason, each saying what to do) whenever it cannot be
// sure: a leader exists, a server is neither reachable nor named dead, a server named dead answers,
// a survivor has no node ID or no Raft data, the survivors disagree, or they are a majority already.

import { hostPort } from "../agent";
import type { Host } from "../config";
import type { HostReport, Observation, RaftPeer } from "./observe";
import { raftHost, raftPort } from "./observe";
import { isNodeId, PeersEntry, peersEntries } from "./peers";

/** A survivor as the recovery treats it. */
export interface SurvivorPlan {
    readonly name: string;
    readonly nodeId: string;
    readonly raftAddress: string;
}

export interface RecoveryPlan {
    /** In serverHosts order: stopped, written and started in this order. */
    readonly survivors: readonly SurvivorPlan[];
    readonly peers: readonly PeersEntry[];
    /** The servers named dead, in serverHosts order. */
    readonly dead: readonly string[];
    /** The Raft configuration the survivors share (before the recovery). */
    readonly raftBefore: readonly RaftPeer[];
}

export type Decision =
    { readonly ok: true; readonly plan: RecoveryPlan } | { readonly ok: false; readonly reasons: readonly string[] };

export interface DecisionInput {
    /** consul:serverHosts, in order. */
    readonly servers: readonly Host[];
    readonly observations: readonly Observation[];
    /** The servers the operator says are gone for good (--dead). */
    readonly dead: readonly string[];
    /** consul:serverRpcPort. */
    readonly rpcPort: number;
}

/** A Raft configuration as a comparable text: sorted `id@address voter|non-voter`. */
function raftKey(peers: readonly RaftPeer[]): string {
    return peers
        .map((p) => `${p.id}@${p.address} ${p.voter ? "voter" : "non-voter"}`)
        .sort()
        .join(", ");
}

export function decideRecovery(input: DecisionInput): Decision {
    const { servers, dead, rpcPort } = input;
    const reasons: string[] = [];
    const byName = new Map(input.observations.map((o) => [o.name, o]));
    const names = servers.map((s) => s.name);

    if (dead.length === 0) {
        const silent = input.observations.filter((o) => !o.reachable).map((o) => o.name);
        reasons.push(
            `name the servers that are gone for good with --dead (e.g. --dead ${silent.join(",") || "<name>,<name>"}): peers.json leaves them out for ever, so this must be your decision, not a guess from who answers now.`,
        );
    }
    for (const name of dead) {
        if (!names.includes(name)) {
            reasons.push(`--dead names ${name}, which is not in consul:serverHosts (${names.join(", ")}).`);
        }
    }
    for (const server of servers) {
        const o = byName.get(server.name);
        if (!o) {
            reasons.push(`${server.name} was not inspected.`);
        } else if (dead.includes(server.name) && o.reachable) {
            reasons.push(
                `${server.name} is named dead but answers over SSH (agent ${o.report?.active ?? "unknown"}): a server that can come back keeps its Raft data and rejoins; start it instead (systemctl start consul), or make sure it is gone before naming it dead.`,
            );
        } else if (!dead.includes(server.name) && !o.reachable) {
            reasons.push(
                `${server.name} cannot be reached (${o.error ?? "no answer"}) and is not named dead: bring it back, or if it is gone for good add it to --dead.`,
            );
        }
    }

    const survivors = servers.filter((s) => !dead.includes(s.name) && byName.get(s.name)?.reachable);
    // Only when every server is named dead: a silent server not named dead has its own reason above.
    if (servers.length > 0 && servers.every((s) => dead.includes(s.name))) {
        reasons.push(
            "no server survives: peers.json needs at least one server with its Raft data; restore from a snapshot instead (docs/runbooks/restore-snapshot.md).",
        );
    }
    const reports = new Map<string, HostReport>();
    for (const s of servers) {
        const report = byName.get(s.name)?.report;
        if (report) reports.set(s.name, report);
    }
    for (const [name, report] of reports) {
        if (report.leader) {
            reasons.push(
                `${name} sees a leader (${report.leader}): quorum is not lost, and peers.json would split the cluster; nothing to recover.`,
            );
        }
    }

    const plans: SurvivorPlan[] = [];
    const views: { name: string; raft: readonly RaftPeer[] }[] = [];
    for (const host of survivors) {
        const report = reports.get(host.name);
        if (!report) {
            const why = byName.get(host.name)?.error ?? "no report";
            reasons.push(
                `${host.name} answered over SSH but its inspection failed (${why}): fix that and run this again.`,
            );
            continue;
        }
        if (report.nodeId === undefined || !isNodeId(report.nodeId)) {
            reasons.push(
                `${host.name} has ${report.nodeId === undefined ? "no node-id file" : `a node-id file that holds no node ID ("${report.nodeId}")`}: without its node ID peers.json cannot name it; recover by hand (docs/runbooks/lost-quorum.md).`,
            );
        }
        if (!report.raftData) {
            reasons.push(
                `${host.name} has no Raft data (raft/ under its data directory): it has nothing to recover from.`,
            );
        }
        if (!report.apiUp || !report.raft) {
            reasons.push(
                `${host.name}'s agent is ${report.active || "unknown"} and ${report.apiUp ? "did not give its Raft configuration" : "its API does not answer"}: its view of the peers is unknown. Start it (systemctl start consul) and run this again.`,
            );
            continue;
        }
        views.push({ name: host.name, raft: report.raft });
        const own = report.raft.find((p) => p.id === report.nodeId);
        if (report.nodeId && isNodeId(report.nodeId)) {
            if (!own) {
                reasons.push(
                    `${host.name}'s node ID ${report.nodeId} is not in its own Raft configuration (${raftKey(report.raft)}): it is not a server of this cluster's last configuration.`,
                );
            } else if (host.addressIsIp && own.address !== hostPort(host.address, rpcPort)) {
                reasons.push(
                    `${host.name} is at ${own.address} in the Raft configuration, but consul:serverHosts and consul:serverRpcPort say ${hostPort(host.address, rpcPort)}: the config and the cluster disagree; fix the config first.`,
                );
            } else if (raftPort(own.address) !== rpcPort) {
                reasons.push(
                    `${host.name} is at ${own.address} in the Raft configuration, but consul:serverRpcPort is ${rpcPort}.`,
                );
            } else {
                plans.push({ name: host.name, nodeId: report.nodeId, raftAddress: own.address });
            }
        }
    }
    const ids = survivors.map((s) => ({ name: s.name, id: reports.get(s.name)?.nodeId }));
    for (const id of new Set(ids.map((x) => x.id).filter((x) => x !== undefined))) {
        const holders = ids.filter((x) => x.id === id).map((x) => x.name);
        if (holders.length > 1) {
            reasons.push(
                `${holders.join(" and ")} have the same node ID ${id}: one was cloned from the other; recover by hand.`,
            );
        }
    }
    const distinct = new Set(views.map((v) => raftKey(v.raft)));
    if (distinct.size > 1) {
        reasons.push(
            `the survivors disagree about the Raft configuration (${views.map((v) => `${v.name}: ${raftKey(v.raft)}`).join("; ")}): which one is the cluster's cannot be decided here; recover by hand from the one with the newest data (docs/runbooks/lost-quorum.md).`,
        );
    }

    const raftBefore = views[0]?.raft ?? [];
    if (distinct.size === 1 && plans.length === survivors.length && survivors.length > 0) {
        const deadHosts = servers.filter((s) => dead.includes(s.name));
        for (const peer of raftBefore) {
            if (plans.some((p) => p.nodeId === peer.id)) continue;
            const named = deadHosts.some(
                (h) => h.name === peer.node || (h.addressIsIp && h.address === raftHost(peer.address)),
            );
            if (!named) {
                reasons.push(
                    `the Raft configuration has ${peer.node || "a server"} (${peer.id} at ${peer.address}), which is neither a surviving server nor named in --dead: name it (if it is one of consul:serverHosts) or find out what it is first.`,
                );
            }
        }
        const voters = raftBefore.filter((p) => p.voter).length;
        const surviving = raftBefore.filter((p) => p.voter && plans.some((s) => s.nodeId === p.id)).length;
        if (surviving > voters / 2) {
            reasons.push(
                `the survivors are ${surviving} of the ${voters} voters, a majority: Raft elects a leader without peers.json. Look at why it does not (journalctl -u consul, the network between them) instead.`,
            );
        }
    }

    if (reasons.length > 0) return { ok: false, reasons };
    return {
        ok: true,
        plan: {
            survivors: plans,
            peers: peersEntries(plans),
            dead: servers.filter((s) => dead.includes(s.name)).map((s) => s.name),
            raftBefore,
        },
    };
}
