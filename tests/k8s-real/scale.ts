// Issue 14's scenario 6: the dev stack's servers scaled 3 → 5 → 3 by `consul:serverCount`, with
// leadership polled throughout.

import * as assert from "assert";
import { PulumiProject } from "../engine/pulumi-cli";
import { LeaderPoll } from "./leader-poll";
import { KubeNode } from "./node";
import { column, consulIn, isReady, seconds, statefulSetPods, waitFor } from "./workloads";

export interface ScaleOptions {
    readonly namespace: string;
    readonly statefulSet: string;
    readonly from: number;
    readonly to: number;
    readonly httpsPort: number;
    readonly serverTlsName: string;
    readonly token: string;
}

/** Raft's voters, by node name, as a server sees them (`consul operator raft list-peers`). */
function voters(node: KubeNode, o: ScaleOptions): string[] {
    const peers = consulIn(node, o.namespace, `${o.statefulSet}-0`, o.token, "consul operator raft list-peers");
    const names = column(peers, "Node");
    const voter = column(peers, "Voter");
    return names.filter((_, k) => voter[k] === "true").sort();
}

/**
 * Scales out to `to` and back to `from`: when each `pulumi up` returns, Raft has exactly the count's
 * servers as voters (the departing ones removed, not left voting while dead) and autopilot's
 * MinQuorum is the count; every server pod is Ready, the PDB expects the count, and a leader is known
 * throughout. Returns the FIGURE line.
 */
export async function scaleOutAndIn(node: KubeNode, project: PulumiProject, o: ScaleOptions): Promise<string> {
    const names = (n: number) => Array.from({ length: n }, (_, k) => `${o.statefulSet}-${k}`);
    const servers = () => statefulSetPods(node, o.namespace, o.statefulSet);
    const poll = LeaderPoll.start(node, o.namespace, o.statefulSet, o.to, o.httpsPort, o.serverTlsName);
    const figures: string[] = [];
    for (const count of [o.to, o.from]) {
        await project.must(["config", "set", "--stack", project.stack, "consul:serverCount", String(count)]);
        const t0 = Date.now();
        const run = await project.update("up");
        const upMs = Date.now() - t0;
        assert.strictEqual(run.code, 0, `serverCount ${count}: ${run.output.slice(-4000)}`);
        // The server-count Job ran in that `pulumi up`, after the StatefulSet: when it returns,
        // Raft's voters are the count's pods already, and autopilot's MinQuorum is the count.
        assert.deepStrictEqual(voters(node, o), names(count), "Raft's voters when pulumi up returned");
        await waitFor(`${count} server pods, all Ready`, () => {
            const pods = servers();
            return pods.length === count && pods.every(isReady);
        });
        const ready = Date.now() - t0;
        const pdb = JSON.parse(node.kubectl(["get", "pdb", "-n", o.namespace, "-o", "json"])) as {
            items: { spec: { maxUnavailable?: number }; status: { expectedPods?: number } }[];
        };
        assert.deepStrictEqual(
            pdb.items.map((p) => [p.spec.maxUnavailable, p.status.expectedPods]),
            [[1, count]],
            "the servers' PodDisruptionBudget",
        );
        const autopilot = consulIn(
            node,
            o.namespace,
            `${o.statefulSet}-0`,
            o.token,
            "consul operator autopilot get-config",
        );
        assert.strictEqual(/MinQuorum\s*=\s*(\d+)/.exec(autopilot)?.[1], String(count), autopilot);
        figures.push(
            `to ${count}: pulumi up ${seconds(upMs)} (voters and MinQuorum ${count} when it returned), pods Ready ${seconds(ready)}`,
        );
    }
    const series = await poll.stop();
    assert.ok(
        series.firstLeaderAt !== undefined && series.longestGapMs <= 2000,
        `leaderless for ${series.longestGapMs} ms`,
    );
    return `scale ${o.from} → ${o.to} → ${o.from}: ${figures.join("; ")}; longest leaderless gap ${series.longestGapMs} ms`;
}
