// Issue 14's scenario 9: the staged upgrade of docs/runbooks/upgrade.md, step by step, on a second
// stack of the project (servers only, in a namespace of its own) installed at the older release.

import * as assert from "assert";
import { PulumiProject } from "../engine/pulumi-cli";
import { LeaderPoll } from "./leader-poll";
import { KubeNode } from "./node";
import { column, consulIn, isReady, seconds, statefulSetPods, waitFor } from "./workloads";

export interface UpgradeOptions {
    /** The stack config it starts from (Pulumi.dev.yaml's). */
    readonly config: Record<string, string>;
    readonly namespace: string;
    readonly statefulSet: string;
    readonly servers: number;
    readonly httpsPort: number;
    readonly serverTlsName: string;
    readonly from: string;
    readonly to: string;
}

/**
 * Installs at `from`, then, as the runbook says, sets `to` and walks updatePartition from the last
 * ordinal down to 0, one `pulumi up` and one `kubectl rollout status` each, checking which pods run
 * which image after each; leadership is polled throughout. Returns the FIGURE line; the stack is
 * destroyed and removed at the end.
 */
export async function stagedUpgrade(node: KubeNode, project: PulumiProject, o: UpgradeOptions): Promise<string> {
    const stack = "upgrade";
    const upgrade = project.inSameBackend(project.dir, stack);
    await upgrade.must(["stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive"]);
    upgrade.setConfig({
        ...o.config,
        k8sNamespace: o.namespace,
        clientsEnabled: "false",
        consulVersion: o.from,
        pvcRetentionWhenDeleted: "Delete",
    });
    await upgrade.must(["config", "set", "--stack", stack, "kubernetes:kubeconfig", node.kubeconfigPath]);
    const set = (key: string, value: string) =>
        upgrade.must(["config", "set", "--stack", stack, `consul:${key}`, value]);
    const servers = () => statefulSetPods(node, o.namespace, o.statefulSet);
    const allReady = () => servers().length === o.servers && servers().every(isReady);
    const images = () =>
        Object.fromEntries(servers().map((p) => [p.metadata.name, p.spec.containers[0].image.replace(/^.*:/, "")]));

    let run = await upgrade.update("up");
    assert.strictEqual(run.code, 0, run.output.slice(-4000));
    await waitFor(`${o.servers} servers Ready at ${o.from}`, allReady);
    const poll = LeaderPoll.start(node, o.namespace, o.statefulSet, o.servers, o.httpsPort, o.serverTlsName);
    const started = Date.now();
    await set("consulVersion", o.to);
    const steps: string[] = [];
    for (let partition = o.servers - 1; partition >= 0; partition--) {
        await set("updatePartition", String(partition));
        const t0 = Date.now();
        run = await upgrade.update("up");
        assert.strictEqual(run.code, 0, `partition ${partition}: ${run.output.slice(-4000)}`);
        const upMs = Date.now() - t0;
        const rollout = ["rollout", "status", "-n", o.namespace, `statefulset/${o.statefulSet}`, "--timeout=10m"];
        node.kubectl(rollout, undefined, 660_000);
        await waitFor("the servers Ready", allReady);
        const want = Object.fromEntries(
            Array.from({ length: o.servers }, (_, k) => [`${o.statefulSet}-${k}`, k >= partition ? o.to : o.from]),
        );
        assert.deepStrictEqual(images(), want, `partition ${partition}`);
        steps.push(`partition ${partition}: pulumi up ${seconds(upMs)}, rolled out ${seconds(Date.now() - t0)}`);
    }
    const series = await poll.stop();
    assert.ok(series.longestGapMs <= 2000, `leaderless for ${series.longestGapMs} ms`);
    assert.ok(series.fewestAnswering >= o.servers - 1, `only ${series.fewestAnswering} servers answered in a round`);
    const token = String((await upgrade.outputs()).aclManagementToken);
    const members = consulIn(node, o.namespace, `${o.statefulSet}-0`, token, "consul members");
    assert.deepStrictEqual(column(members, "Build"), Array(o.servers).fill(o.to), members);
    run = await upgrade.update("destroy");
    assert.strictEqual(run.code, 0, run.output.slice(-4000));
    await upgrade.must(["stack", "rm", stack, "--yes"]);
    return `upgrade ${o.from} → ${o.to} in ${seconds(Date.now() - started)} (${steps.join("; ")}); longest leaderless gap ${series.longestGapMs} ms; fewest servers answering ${series.fewestAnswering}`;
}
