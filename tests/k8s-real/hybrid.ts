// Issue 14's scenario 8, the hybrid topology (seed 003): the servers on nspawn VM hosts, installed
// over SSH as the VM suite's are (the release from the test's mirror), and the client agents as the
// DaemonSet on the real node, joining them across the bridge. A second stack of the project,
// `hybrid`, run after the dev stack is destroyed (both DaemonSets would want the node's ports).

import * as assert from "assert";
import { vmStackConfig } from "../e2e/checks";
import { Hosts } from "../e2e/hosts";
import { PulumiProject } from "../engine/pulumi-cli";
import { appPodScenario, removeApp } from "./app";
import { KubeNode } from "./node";
import { CLUSTER } from "./node-files";
import { column, consulIn, isReady, podsIn, seconds, waitFor } from "./workloads";

export interface HybridOptions {
    readonly hosts: Hosts;
    /** The hosts (1-based) that become the servers. */
    readonly servers: readonly number[];
    readonly release: { readonly mirrorUrl: string; readonly consulVersion: string };
    /** The stack's k8sNamespace (its clients go to `<namespace>-clients`). */
    readonly namespace: string;
}

/** Rows of `consul members`: name, the address's host part, status, type. */
function memberRows(table: string): string[][] {
    const names = column(table, "Node");
    const addresses = column(table, "Address");
    const statuses = column(table, "Status");
    const types = column(table, "Type");
    return names.map((n, k) => [n, addresses[k].replace(/:\d+$/, ""), statuses[k], types[k]]).sort();
}

/**
 * `pulumi up` of the hybrid stack, the members and the Raft peers as the node's client agent sees
 * them, the example app's pod through that agent, then `pulumi destroy`. Returns the FIGURE line.
 */
export async function hybridScenario(node: KubeNode, project: PulumiProject, o: HybridOptions): Promise<string> {
    const stack = "hybrid";
    const host = (i: number) => o.hosts.hosts[i - 1];
    // The pods are routable from the VM hosts, as on a flat network (the CNI does not masquerade):
    // the agent-token Job calls the servers' HTTPS API from a pod.
    for (const i of o.servers) await o.hosts.run(i, `ip route replace ${CLUSTER.podCidr} via ${node.address}`);

    const hybrid = project.inSameBackend(project.dir, stack);
    await hybrid.must(["stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive"]);
    hybrid.setConfig(
        vmStackConfig(o.hosts, { servers: o.servers, clients: [] }, o.release, {
            topology: "hybrid",
            k8sNamespace: o.namespace,
        }),
    );
    await hybrid.must(["config", "set", "--stack", stack, "kubernetes:kubeconfig", node.kubeconfigPath]);
    const started = Date.now();
    let run = await hybrid.update("up");
    assert.strictEqual(run.code, 0, run.output.slice(-6000));
    const upMs = Date.now() - started;

    const clientNamespace = `${o.namespace}-clients`;
    await waitFor("the client agent pod Ready", () => podsIn(node, clientNamespace).some(isReady));
    const readyMs = Date.now() - started;
    const [client] = podsIn(node, clientNamespace).filter(isReady);
    const token = String((await hybrid.outputs()).aclManagementToken);
    assert.match(token, /^[0-9a-f-]{36}$/);
    const inClient = (command: string) => consulIn(node, clientNamespace, client.metadata.name, token, command);

    // The node's agent (hostNetwork: the node's own address on the bridge) and the VM servers.
    const want = [
        ...o.servers.map((i) => [host(i).name, host(i).address, "alive", "server"]),
        [node.name, node.address, "alive", "client"],
    ].sort();
    await waitFor("the servers and the node's client agent alive", () => {
        const rows = memberRows(inClient("consul members"));
        return JSON.stringify(rows) === JSON.stringify(want);
    });
    const peers = inClient("consul operator raft list-peers");
    assert.deepStrictEqual(column(peers, "Node").sort(), o.servers.map((i) => host(i).name).sort(), peers);
    assert.deepStrictEqual(
        column(peers, "State").sort(),
        ["leader", ...Array(o.servers.length - 1).fill("follower")].sort(),
        peers,
    );
    assert.deepStrictEqual(column(peers, "Voter"), Array(o.servers.length).fill("true"), peers);

    // The app on the node: its agent forwards to the VM servers, where the key and the service land.
    const scenario = {
        consulProject: hybrid,
        stack,
        admin: (command: string, stdin = "") =>
            o.hosts.run(o.servers[0], `. /etc/profile.d/consul-cli.sh && ${command}`, { stdin }),
        agentNode: node.name,
    };
    const app = await appPodScenario(node, scenario);
    await removeApp(app.app, scenario);

    run = await hybrid.update("destroy");
    assert.strictEqual(run.code, 0, run.output.slice(-4000));
    await hybrid.must(["stack", "rm", stack, "--yes"]);
    return `hybrid pulumi up ${seconds(upMs)} (${o.servers.length} VM servers over SSH, the DaemonSet); the client pod Ready by ${seconds(readyMs)}; ${app.figure}`;
}
