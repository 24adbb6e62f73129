// The two namespaces and their Pod Security labels (components/kubernetes/manifests/namespaces.ts),
// and which namespace every object lands in, for kubernetes and hybrid. The API server's verdict on
// these labels is in pod-security.test.ts (`npm run test:k8s`).
/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- manifests are read as loose JSON */

import * as assert from "assert";
import { DELETION_PROPAGATION_ANNOTATION, POD_SECURITY_VERSION } from "../../components/kubernetes/manifests";
import { EvaluatedStack, evaluateProgram, stackFileConfig, withOperatorHome } from "../mocks";
import { withPinnedKeys } from "../vm/fixtures";
import { Json, k8sObject, T } from "./helpers";

const dev = () => stackFileConfig("dev").config;

const RESTRICTED = {
    "app.kubernetes.io/part-of": "consul",
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "v1.34",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "v1.34",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/audit-version": "v1.34",
};
const PRIVILEGED = {
    ...RESTRICTED,
    "pod-security.kubernetes.io/enforce": "privileged",
};

/** kind/name -> namespace of every namespaced Kubernetes object the program registered. */
function placement(r: EvaluatedStack): Record<string, string> {
    const out: Record<string, string> = {};
    for (const res of r.mocks.resources.filter((x) => x.type.startsWith("kubernetes:"))) {
        const meta = (res.inputs as Json).metadata;
        if (res.type === T.namespace) continue;
        const kind = res.type.split(":")[2];
        // A second object of the same kind and name (the CA ConfigMaps) is told apart by its namespace.
        const key = `${kind}/${meta.name}` in out ? `${kind}/${meta.name}@${meta.namespace}` : `${kind}/${meta.name}`;
        assert.ok(!(key in out), `${key} twice`);
        out[key] = meta.namespace;
    }
    return out;
}

const namespaces = (r: EvaluatedStack) =>
    Object.fromEntries(r.mocks.ofType(T.namespace).map((n) => [(n.inputs as Json).metadata.name, n.inputs.metadata]));

describe("destroy and the servers' namespace", () => {
    // Deleting a namespace deletes every claim in it: the StatefulSet's PVC retention alone cannot keep them.
    const retained = async (pvcRetentionWhenDeleted: string) => {
        const r = await evaluateProgram({ ...dev(), pvcRetentionWhenDeleted }, { stack: "dev" });
        return Object.fromEntries(
            r.mocks.ofType(T.namespace).map((n) => [(n.inputs as Json).metadata.name, n.retainOnDelete ?? false]),
        );
    };
    it("pvcRetentionWhenDeleted Retain: destroy leaves the servers' namespace (and so its claims); the clients' goes", async () => {
        assert.deepStrictEqual(await retained("Retain"), { consul: true, "consul-clients": false });
    });
    it("pvcRetentionWhenDeleted Delete: destroy deletes both", async () => {
        assert.deepStrictEqual(await retained("Delete"), { consul: false, "consul-clients": false });
    });
});

describe("Namespaces and Pod Security labels", () => {
    it("the levels are pinned to the Kubernetes minor the API server suite runs", () => {
        assert.strictEqual(POD_SECURITY_VERSION, "v1.34");
    });

    describe("kubernetes (Pulumi.dev.yaml)", () => {
        let r: EvaluatedStack;
        before(async () => {
            r = await evaluateProgram(dev(), { stack: "dev" });
        });

        it("two namespaces: consul enforces restricted, consul-clients privileged; both warn and audit at restricted", () => {
            assert.deepStrictEqual(namespaces(r), {
                consul: { name: "consul", labels: RESTRICTED },
                "consul-clients": { name: "consul-clients", labels: PRIVILEGED },
            });
            // Resource names: the servers' namespace keeps its old one; the clients' is new.
            assert.deepStrictEqual(
                r.mocks
                    .ofType(T.namespace)
                    .map((n) => n.name)
                    .sort(),
                ["consul-k8s-client-namespace", "consul-k8s-namespace"],
            );
        });

        it("servers, the ACL and server-count Jobs and their objects in consul; the client agents and theirs in consul-clients", () => {
            assert.deepStrictEqual(placement(r), {
                "ConfigMap/consul-ca": "consul",
                "ConfigMap/consul-ca@consul-clients": "consul-clients",
                "ConfigMap/consul-server-config": "consul",
                "Secret/consul-server-secret-config": "consul",
                "Secret/consul-server-tls": "consul",
                "Service/consul-server": "consul",
                "Service/consul-ui": "consul",
                "PodDisruptionBudget/consul-server": "consul",
                "StatefulSet/consul-server": "consul",
                "Secret/consul-acl-init": "consul",
                "ConfigMap/consul-acl-agent-policy": "consul",
                "Job/consul-acl-agent-token": "consul",
                "Job/consul-server-count": "consul",
                "ConfigMap/consul-client-config": "consul-clients",
                "Secret/consul-client-secret-config": "consul-clients",
                "Secret/consul-client-https": "consul-clients",
                "DaemonSet/consul-client": "consul-clients",
            });
        });

        it("the DaemonSet mounts the CA ConfigMap of its own namespace; the Job the servers' one", () => {
            const ds = k8sObject(r, T.daemonSet, "consul-client");
            const ca = (ds.inputs as Json).spec.template.spec.volumes.find((v: Json) => v.name === "ca");
            assert.deepStrictEqual(ca.configMap, { name: "consul-ca" });
            k8sObject(r, T.configMap, "consul-ca", "consul-clients");
            const job = k8sObject(r, T.job, "consul-acl-agent-token", "consul");
            const jobCa = (job.inputs as Json).spec.template.spec.volumes.find(
                (v: Json) => v.configMap?.name === "consul-ca",
            );
            assert.ok(jobCa, "the ACL Job mounts no consul-ca ConfigMap");
        });

        it("a DaemonSet replacement (its move to consul-clients) deletes the old one and its pods first", () => {
            const ds = k8sObject(r, T.daemonSet, "consul-client");
            assert.strictEqual(ds.deleteBeforeReplace, true);
            assert.deepStrictEqual((ds.inputs as Json).metadata.annotations, {
                [DELETION_PROPAGATION_ANNOTATION]: "foreground",
            });
            // The servers keep their resource names, namespace and PVC templates: nothing of theirs moves.
            const sts = k8sObject(r, T.statefulSet, "consul-server", "consul");
            assert.strictEqual(sts.name, "consul-servers-statefulset");
            assert.notStrictEqual(sts.deleteBeforeReplace, true);
        });
    });

    it("k8sClientNamespace names the clients' namespace; k8sNamespace moves the default along", async () => {
        const named = await evaluateProgram({ ...dev(), k8sClientNamespace: "node-agents" }, { stack: "dev" });
        assert.deepStrictEqual(Object.keys(namespaces(named)).sort(), ["consul", "node-agents"]);
        assert.strictEqual(
            (k8sObject(named, T.daemonSet, "consul-client").inputs as Json).metadata.namespace,
            "node-agents",
        );
        const moved = await evaluateProgram({ ...dev(), k8sNamespace: "infra" }, { stack: "dev" });
        assert.deepStrictEqual(namespaces(moved)["infra-clients"].labels, PRIVILEGED);
        assert.deepStrictEqual(namespaces(moved).infra.labels, RESTRICTED);
    });

    it("clientsEnabled false: only the restricted namespace, nothing privileged", async () => {
        const r = await evaluateProgram({ ...dev(), clientsEnabled: "false" }, { stack: "dev" });
        assert.deepStrictEqual(namespaces(r), { consul: { name: "consul", labels: RESTRICTED } });
        assert.deepStrictEqual([...new Set(Object.values(placement(r)))], ["consul"]);
        // Unused then, so not refused even when it names the servers' namespace.
        const same = await evaluateProgram(
            { ...dev(), clientsEnabled: "false", k8sClientNamespace: "consul" },
            { stack: "dev" },
        );
        assert.deepStrictEqual(Object.keys(namespaces(same)), ["consul"]);
    });

    it("k8sCreateNamespace false: no Namespace objects, the objects still split between the two names", async () => {
        const r = await evaluateProgram({ ...dev(), k8sCreateNamespace: "false" }, { stack: "dev" });
        assert.deepStrictEqual(namespaces(r), {});
        assert.strictEqual(placement(r)["DaemonSet/consul-client"], "consul-clients");
        assert.strictEqual(placement(r)["StatefulSet/consul-server"], "consul");
    });

    it("app namespaces get the CA ConfigMap; an app in the servers' namespace shares theirs", async () => {
        const r = await evaluateProgram(
            { ...dev(), k8sAppNamespaces: JSON.stringify(["shop", "consul"]) },
            { stack: "dev" },
        );
        for (const ns of ["consul", "consul-clients", "shop"]) k8sObject(r, T.configMap, "consul-ca", ns);
        assert.strictEqual(
            r.mocks.ofType(T.configMap).filter((c) => (c.inputs as Json).metadata.name === "consul-ca").length,
            3,
        );
    });

    it("hybrid: the ACL Job in consul (restricted), the client agents in consul-clients (privileged)", async () => {
        const operator = withOperatorHome();
        try {
            const r = await evaluateProgram(
                withPinnedKeys({
                    topology: "hybrid",
                    serverHosts: JSON.stringify(["s1=10.20.0.11", "s2=10.20.0.12", "s3=consul-3.example.com"]),
                    sshPrivateKeyPath: "~/.ssh/consul_ed25519",
                }),
                { stack: "prod" },
            );
            assert.deepStrictEqual(namespaces(r), {
                consul: { name: "consul", labels: RESTRICTED },
                "consul-clients": { name: "consul-clients", labels: PRIVILEGED },
            });
            assert.deepStrictEqual(placement(r), {
                "ConfigMap/consul-ca": "consul",
                "ConfigMap/consul-ca@consul-clients": "consul-clients",
                "Secret/consul-acl-init": "consul",
                "ConfigMap/consul-acl-agent-policy": "consul",
                "Job/consul-acl-agent-token": "consul",
                "ConfigMap/consul-client-config": "consul-clients",
                "Secret/consul-client-secret-config": "consul-clients",
                "Secret/consul-client-https": "consul-clients",
                "DaemonSet/consul-client": "consul-clients",
            });
        } finally {
            operator.restore();
        }
    });
});
