// Issue 14's scenario 6: the dev stack's servers scaled 3 → 5 → 3 by `consul:serverCount`, with
// leadership polled throughout.

import * as assert from "assert";
import { PulumiProject } from "../engine/pulumi-cli";
import { LeaderPoll } from "./leader-poll";
import { KubeNode } from "./node";
import { column, consulIn, isReady, podsIn, seconds, waitFor } from "./workloads";

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
 * Scales out to `to` and back to `from`: after each `pulumi up` every server pod is Ready and Raft
 * has exactly those servers as voters (the departing ones removed, not left voting while dead); a
 * leader is known throughout. Returns the FIGURE line.
 */
export async function scaleOutAndIn(node: KubeNode, project: PulumiProject, o: ScaleOptions): Promise<string> {
    const names = (n: number) => Array.from({ length: n }, (_, k) => `${o.statefulSet}-${k}`);
    const servers = () => podsIn(node, o.namespace).filter((p) => p.metadata.name.startsWith(`${o.statefulSet}-`));
    const poll = LeaderPoll.start(node, o.namespace, o.statefulSet, o.to, o.httpsPort, o.serverTlsName);
    const figures: string[] = [];
    for (const count of [o.to, o.from]) {
        await project.must(["config", "set", "--stack", project.stack, "consul:serverCount", String(count)]);
        const t0 = Date.now();
        const run = await project.update("up");
        assert.strictEqual(run.code, 0, `serverCount ${count}: ${run.output.slice(-4000)}`);
        await waitFor(`${count} server pods, all Ready`, () => {
            const pods = servers();
            return pods.length === count && pods.every(isReady);
        });
        const ready = Date.now() - t0;
        await waitFor(
            `Raft's voters to be ${names(count).join(", ")}`,
            () => voters(node, o).join() === names(count).join(),
            180_000,
        );
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
        const minQuorum = /MinQuorum\s*=\s*(\d+)/.exec(autopilot)?.[1] ?? "?";
        figures.push(
            `to ${count}: pods Ready ${seconds(ready)}, Raft's voters ${seconds(Date.now() - t0)}, autopilot MinQuorum ${minQuorum}`,
        );
    }
    const series = await poll.stop();
    assert.ok(
        series.firstLeaderAt !== undefined && series.longestGapMs <= 2000,
        `leaderless for ${series.longestGapMs} ms`,
    );
    return `scale ${o.from} → ${o.to} → ${o.from}: ${figures.join("; ")}; longest leaderless gap ${series.longestGapMs} ms`;
}
