// Scenario 2 of issue 14 (and the pod of scenario 8): examples/app, as its README deploys it, on the
// real node. The app's namespace listed in the Consul stack (its consul-ca ConfigMap, our CA), a token
// with examples/app/policy.hcl in a Secret, and the app stack's own `pulumi up` with a StackReference
// to the Consul stack, in the same file backend. Its pod reaches the node-local agent at
// https://$(HOST_IP):<https port> with the mounted CA and the server name, registers itself and writes
// and reads its key; the same calls without the server name, the CA or the token, or outside its key
// prefix, are refused with the TLS and ACL errors that prove each is used.

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../mocks";
import { anotherProject } from "../engine/app-project";
import { PulumiProject } from "../engine/pulumi-cli";
import { KubeNode } from "./node";
import { isReady, podsIn, seconds, waitFor } from "./workloads";

const APP_ENTRIES = ["package.json", "tsconfig.json", "tsconfig.pulumi.json", "app", "components", "examples/app"];
const APP_NAMESPACE = "apps";
const TOKEN_SECRET = "consul-app-token";
const SERVICE = "consul-example-app";

export interface AppScenario {
    readonly consulProject: PulumiProject;
    /** The Consul stack the app's StackReference reads (`organization/consul/<stack>`). */
    readonly stack: string;
    /** Runs a `consul` CLI command with the management token, where the servers answer it. */
    readonly admin: (command: string, stdin?: string) => Promise<string>;
    /** The client agents' node name on this node (the catalog node the app registers on). */
    readonly agentNode: string;
}

/** Runs the scenario; returns the app stack (destroy it before the Consul stack) and a figure line. */
export async function appPodScenario(node: KubeNode, s: AppScenario): Promise<{ app: PulumiProject; figure: string }> {
    const consul = s.admin;
    node.apply([
        {
            apiVersion: "v1",
            kind: "Namespace",
            metadata: { name: APP_NAMESPACE, labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
        },
    ]);
    await s.consulProject.must([
        "config",
        "set",
        "--stack",
        s.stack,
        "--path",
        "consul:k8sAppNamespaces[0]",
        APP_NAMESPACE,
    ]);
    const listed = await s.consulProject.update("up");
    assert.strictEqual(listed.code, 0, listed.output.slice(-4000));
    const caOf = (ns: string) =>
        node.kubectl(["get", "configmap", "consul-ca", "-n", ns, "-o", "jsonpath={.data.ca\\.crt}"]);
    assert.strictEqual(caOf(APP_NAMESPACE).trim(), String((await s.consulProject.outputs()).caCertPem).trim());

    const policy = fs.readFileSync(path.join(REPO_ROOT, "examples/app/policy.hcl"), "utf8");
    await consul(`consul acl policy create -name ${SERVICE} -rules - >/dev/null`, policy);
    const created = JSON.parse(await consul(`consul acl token create -policy-name ${SERVICE} -format json`)) as {
        SecretID: string;
    };
    // `kubectl create` from stdin: the token in no argument, and in no last-applied annotation (which
    // `kubectl apply` would copy a stringData value into).
    node.kubectl(["delete", "secret", "-n", APP_NAMESPACE, TOKEN_SECRET, "--ignore-not-found"]);
    node.kubectl(
        ["create", "-f", "-"],
        JSON.stringify({
            apiVersion: "v1",
            kind: "Secret",
            metadata: { name: TOKEN_SECRET, namespace: APP_NAMESPACE },
            stringData: { token: created.SecretID },
        }),
    );

    const app = await anotherProject(s.consulProject, `app-k8s-${s.stack}`, APP_ENTRIES, "examples/app", "dev", {
        consulStack: `organization/consul/${s.stack}`,
        namespace: APP_NAMESPACE,
        tokenSecret: TOKEN_SECRET,
    });
    const kubeconfig = node.kubeconfigPath;
    await app.must(["config", "set", "--stack", "dev", "kubernetes:kubeconfig", kubeconfig]);
    const started = Date.now();
    const up = await app.update("up");
    assert.strictEqual(up.code, 0, up.output.slice(-4000));
    await waitFor("the app pod Ready", () => podsIn(node, APP_NAMESPACE).some(isReady), 180_000);
    const [pod] = podsIn(node, APP_NAMESPACE).filter(isReady);
    const podName = pod.metadata.name;
    const key = `${SERVICE}/${podName}`;
    const logs = () => node.kubectl(["logs", "-n", APP_NAMESPACE, podName]);
    await waitFor("the app's key read back and the catalog listed", () => logs().includes(`\n${SERVICE}\n`), 120_000);
    const readyMs = Date.now() - started;
    assert.match(logs(), new RegExp(`^kv ${key}: started \\d{4}-\\d\\d-\\d\\dT`, "m"));

    // What the app wrote is in the cluster: its instance on this node's agent, its key.
    const nodes = await consul(`consul catalog nodes -service=${SERVICE}`);
    assert.match(nodes, new RegExp(`^${s.agentNode}\\s`, "m"), nodes);
    assert.match(await consul(`consul kv get ${key}`), /^started /);

    // The env the helper gave it, resolved by the kubelet, and what each part of it does.
    const inApp = (command: string) => {
        try {
            return {
                ok: true,
                out: node.kubectl(["exec", "-n", APP_NAMESPACE, podName, "--", "/bin/sh", "-c", command]),
            };
        } catch (e) {
            return { ok: false, out: String(e) };
        }
    };
    const env = inApp("echo $CONSUL_HTTP_ADDR $CONSUL_TLS_SERVER_NAME $CONSUL_CACERT").out.trim();
    const { status } = JSON.parse(node.kubectl(["get", "pod", "-n", APP_NAMESPACE, podName, "-o", "json"])) as {
        status: { hostIP: string };
    };
    const serverName = String((await s.consulProject.outputs()).consulTlsServerName);
    const httpsPort = Number(/:(\d+)$/.exec(String((await s.consulProject.outputs()).consulHttpAddr))?.[1]);
    assert.strictEqual(env, `https://${status.hostIP}:${httpsPort} ${serverName} /etc/consul-ca/ca.crt`);
    assert.strictEqual(inApp(`consul kv get ${key}`).ok, true);
    const noServerName = inApp(`CONSUL_TLS_SERVER_NAME= consul kv get ${key}`);
    assert.ok(!noServerName.ok, "the node IP verified as the agent's name");
    assert.match(noServerName.out, /x509: certificate is valid for .*not /);
    const noCa = inApp(`CONSUL_CACERT= consul kv get ${key}`);
    assert.ok(!noCa.ok, "the agent's certificate verified without our CA");
    assert.match(noCa.out, /x509: certificate signed by unknown authority/);
    const noToken = inApp(`CONSUL_HTTP_TOKEN= consul kv put ${key} x`);
    assert.ok(!noToken.ok, "a write without the token was allowed");
    assert.match(noToken.out, /Permission denied/);
    const otherKey = inApp("consul kv put other/key x");
    assert.ok(!otherKey.ok, "the app's token wrote outside its prefix");
    assert.match(otherKey.out, /Permission denied/);

    return {
        app,
        figure: `app stack pulumi up to the key read back ${seconds(readyMs)} (pod ${podName} on ${s.agentNode})`,
    };
}

/**
 * Destroys the app stack and removes it: the pod deregisters (start.sh's TERM trap); the namespace is
 * the test's.
 */
export async function removeApp(app: PulumiProject, s: AppScenario): Promise<void> {
    const down = await app.update("destroy");
    assert.strictEqual(down.code, 0, down.output.slice(-4000));
    await app.must(["stack", "rm", app.stack, "--yes"]);
    await waitFor(
        "the app's instance deregistered",
        async () => !(await s.admin("consul catalog services")).split("\n").includes(SERVICE),
    );
}
