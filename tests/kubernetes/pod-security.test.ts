// Pod Security admission on the real kube-apiserver (api-server.ts), with the program's OWN
// namespaces: the rendered Namespace objects (their pod-security.kubernetes.io labels included) are
// created for real, then the pods each workload's controller would create are dry-run created in
// the namespace the program puts the workload in. PodSecurity enforces on pods only (on a
// StatefulSet/DaemonSet/Job it only warns), hence the pods. Run with `npm run test:k8s`.

import * as assert from "assert";
import { ApiServer, controlPlaneBinaries, startApiServer } from "./api-server";
import { inNamespace, messageOf, podOf, ResourcePaths } from "./api-objects";
import { Json } from "./helpers";
import { Manifest } from "./render";
import { renderVariants, VARIANTS } from "./variants";

/** The program's namespaces in every variant (components/kubernetes/base.ts). */
const SERVERS_NS = "consul";
const CLIENTS_NS = "consul-clients";
/** Made by the test: `baseline` enforced, to show the client pod cannot meet even that. */
const BASELINE_NS = "consul-psa-baseline";

// The parts of the API server's PodSecurity messages about the client pod: seed 003's host
// network and hostPath data dir (the host ports follow from hostNetwork), and its root init
// container, which keeps CAP_CHOWN only.
const HOST_NETWORK = "host namespaces (hostNetwork=true)";
const hostPorts = (ports: string) => `hostPort (container "consul" uses hostPorts ${ports})`;
const CHOWN =
    'unrestricted capabilities (container "data-dir-owner" must not include "CHOWN" in securityContext.capabilities.add)';
const HOST_PATH = 'restricted volume types (volume "data" uses restricted volume type "hostPath")';
const ROOT_INIT =
    'runAsNonRoot != true (container "data-dir-owner" must not set securityContext.runAsNonRoot=false), runAsUser=0 (container "data-dir-owner" must not set runAsUser=0)';

/** Each variant's client host ports (the rendered ports: HTTPS, gossip, gRPC, DNS, plain HTTP where on). */
const CLIENT_HOST_PORTS: Record<string, string> = {
    dev: "8301, 8501, 8503, 8600",
    "one-server": "8301, 8501, 8503, 8600",
    "five-servers": "8301, 8501, 8503, 8600",
    "host-port": "8301, 8501, 8503, 8600",
    "acl-off": "8301, 8501, 8503, 8600",
    "plain-http-storage-class": "8301, 8500, 8501, 8503",
    hybrid: "8301, 8501, 8503, 8600",
};

/** What `restricted` (pinned to v1.34 by the program's labels) says about a variant's client pod. */
function restrictedViolations(variant: string): string {
    const network = variant === "host-port" ? [] : [HOST_NETWORK];
    return [...network, hostPorts(CLIENT_HOST_PORTS[variant]), CHOWN, HOST_PATH, ROOT_INIT].join(", ");
}

describe("Pod Security admission (kube-apiserver 1.34) in the program's own namespaces", function () {
    this.timeout(60 * 60_000);
    let server: ApiServer | undefined;
    let paths: ResourcePaths;
    let rendered: Record<string, Manifest[]>;
    const workload = (variant: string, kind: string): Json => {
        const found = rendered[variant].find((m) => m.object.kind === kind)?.object;
        assert.ok(found, `${variant} renders no ${kind}`);
        return found;
    };
    const nsOf = (object: Json): string => String(object.metadata.namespace);
    const podIn = async (object: Json, namespace = nsOf(object)) => {
        const res = await paths.dryRunCreate(podOf(object, namespace));
        return { status: res.status, message: messageOf(res), warnings: res.warnings };
    };

    before(async function () {
        const bin = controlPlaneBinaries();
        rendered = await renderVariants();
        server = await startApiServer(bin);
        paths = new ResourcePaths(server);
        const namespaces: Json[] = [
            ...Object.values(rendered).flatMap((ms) => ms.filter((m) => m.object.kind === "Namespace")),
        ].map((m) => m.object);
        namespaces.push({
            apiVersion: "v1",
            kind: "Namespace",
            metadata: { name: BASELINE_NS, labels: { "pod-security.kubernetes.io/enforce": "baseline" } },
        });
        for (const ns of namespaces) {
            const res = await paths.apply(ns);
            assert.ok([200, 201].includes(res.status), messageOf(res));
        }
        for (const name of new Set(namespaces.map((n) => String(n.metadata.name)))) {
            // The ServiceAccount admission plugin wants the pod's service account ("default"); the
            // controller manager, not run here, would create it.
            const sa = await paths.apply({
                apiVersion: "v1",
                kind: "ServiceAccount",
                metadata: { name: "default", namespace: name },
            });
            assert.strictEqual(sa.status, 201, messageOf(sa));
        }
    });
    after(async () => {
        await server?.stop();
    });

    it("every variant renders the same two namespaces; the server stores their Pod Security labels", async () => {
        for (const [variant, manifests] of Object.entries(rendered)) {
            const names = manifests
                .filter((m) => m.object.kind === "Namespace")
                .map((m) => String((m.object.metadata as Json).name));
            assert.deepStrictEqual(names.sort(), [SERVERS_NS, CLIENTS_NS].sort(), variant);
        }
        const labels = async (name: string) => {
            const res = await server!.request("GET", `/api/v1/namespaces/${name}`);
            const all = (res.body.metadata as Json).labels as Record<string, string>;
            return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith("pod-security.")));
        };
        const pinned = (enforce: string) => ({
            "pod-security.kubernetes.io/enforce": enforce,
            "pod-security.kubernetes.io/enforce-version": "v1.34",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": "v1.34",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/audit-version": "v1.34",
        });
        assert.deepStrictEqual(await labels(SERVERS_NS), pinned("restricted"));
        assert.deepStrictEqual(await labels(CLIENTS_NS), pinned("privileged"));
    });

    it("the servers' namespace enforces: a pod that breaks `restricted` is refused there, admitted (warned) in the clients'", async () => {
        const root = podOf(workload("dev", "StatefulSet"), SERVERS_NS);
        root.spec.securityContext.runAsNonRoot = false;
        const refused = await paths.dryRunCreate(root);
        assert.strictEqual(refused.status, 403);
        assert.strictEqual(
            messageOf(refused),
            'pods "consul-server-0" is forbidden: violates PodSecurity "restricted:v1.34": runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)',
        );
        const ok = await paths.dryRunCreate(inNamespace(root, CLIENTS_NS));
        assert.strictEqual(ok.status, 201, messageOf(ok));
        assert.deepStrictEqual(ok.warnings, [
            'would violate PodSecurity "restricted:v1.34": runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)',
        ]);
    });

    for (const variant of Object.keys(VARIANTS)) {
        it(`${variant}: the server and Job pods are admitted in ${SERVERS_NS} (restricted) without a warning`, async () => {
            // hybrid has no StatefulSet nor server-count Job (its servers are VMs); acl-off no ACL Job.
            const all = ["Job/consul-acl-agent-token", "Job/consul-server-count", "StatefulSet/consul-server"];
            const expected = { hybrid: [all[0]], "acl-off": all.slice(1) }[variant] ?? all;
            const objects = rendered[variant]
                .map((m) => m.object)
                .filter((o) => o.kind === "StatefulSet" || o.kind === "Job");
            const name = (o: Json) => `${String(o.kind)}/${String(o.metadata.name)}`;
            assert.deepStrictEqual(objects.map(name).sort(), expected);
            for (const object of objects) {
                assert.strictEqual(nsOf(object), SERVERS_NS, name(object));
                const got = await podIn(object);
                assert.deepStrictEqual([got.status, got.warnings], [201, []], `${name(object)}: ${got.message}`);
                const res = await paths.dryRunCreate(object);
                assert.deepStrictEqual([res.status, res.warnings], [201, []], `${name(object)}: ${messageOf(res)}`);
            }
        });

        it(`${variant}: the client pod is admitted in ${CLIENTS_NS} (privileged), with the \`restricted\` warning`, async () => {
            const ds = workload(variant, "DaemonSet");
            assert.strictEqual(nsOf(ds), CLIENTS_NS);
            const got = await podIn(ds);
            if (variant === "dev") console.log(`      ${CLIENTS_NS} warning: ${got.warnings.join(" | ")}`);
            assert.strictEqual(got.status, 201, got.message);
            assert.deepStrictEqual(got.warnings, [
                `would violate PodSecurity "restricted:v1.34": ${restrictedViolations(variant)}`,
            ]);
        });

        it(`${variant}: the client pod put in ${SERVERS_NS} is refused with the PodSecurity message`, async () => {
            const got = await podIn(workload(variant, "DaemonSet"), SERVERS_NS);
            if (variant === "dev") console.log(`      in ${SERVERS_NS}: ${got.message}`);
            assert.strictEqual(got.status, 403, got.message);
            assert.strictEqual(
                got.message,
                `pods "consul-client-x7k2p" is forbidden: violates PodSecurity "restricted:v1.34": ${restrictedViolations(variant)}`,
            );
        });
    }

    it("dev: the DaemonSet itself is accepted in its namespace with the warning (no hostPorts: those are defaulted on pods)", async () => {
        const res = await paths.dryRunCreate(workload("dev", "DaemonSet"));
        assert.strictEqual(res.status, 201, messageOf(res));
        assert.deepStrictEqual(res.warnings, [
            `would violate PodSecurity "restricted:v1.34": ${HOST_NETWORK}, ${CHOWN}, ${HOST_PATH}, ${ROOT_INIT}`,
        ]);
    });

    it("dev: why `privileged` and not `baseline`: under baseline the client pod is refused for seed 003's design alone", async () => {
        const got = await podIn(workload("dev", "DaemonSet"), BASELINE_NS);
        console.log(`      baseline: ${got.message}`);
        assert.strictEqual(got.status, 403, got.message);
        // The init container (root, CHOWN) meets baseline: only hostNetwork, hostPath and the ports are named.
        assert.strictEqual(
            got.message,
            `pods "consul-client-x7k2p" is forbidden: violates PodSecurity "baseline:latest": ${HOST_NETWORK}, hostPath volumes (volume "data"), ${hostPorts("8301, 8501, 8503, 8600")}`,
        );
    });

    it("an upgrade relabels the old namespace under a running client pod: the server warns, the pod stays, no new one is admitted", async () => {
        // A stack from before the split: its client pod runs in the (then unlabelled) servers' namespace.
        const old = "consul-upgrade";
        for (const object of [
            { apiVersion: "v1", kind: "Namespace", metadata: { name: old } },
            { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: old } },
            podOf(workload("dev", "DaemonSet"), old),
        ]) {
            const res = await paths.apply(object);
            assert.strictEqual(res.status, 201, messageOf(res));
        }
        const serversNs = rendered.dev.find(
            (m) => m.object.kind === "Namespace" && (m.object.metadata as Json).name === SERVERS_NS,
        );
        assert.ok(serversNs);
        const relabel = structuredClone(serversNs.object) as Json;
        relabel.metadata.name = old;
        const res = await paths.apply(relabel);
        console.log(`      relabel warnings: ${res.warnings.join(" | ")}`);
        assert.strictEqual(res.status, 200, messageOf(res));
        assert.deepStrictEqual(res.warnings, [
            `existing pods in namespace "${old}" violate the new PodSecurity enforce level "restricted:v1.34"`,
            "consul-client-x7k2p: host namespaces, hostPort, unrestricted capabilities, restricted volume types, runAsNonRoot != true, runAsUser=0",
        ]);
        const still = await server!.request("GET", `/api/v1/namespaces/${old}/pods/consul-client-x7k2p`);
        assert.strictEqual(still.status, 200, "the running pod was removed");
        const again = podOf(workload("dev", "DaemonSet"), old);
        again.metadata.name = "consul-client-recreated";
        const refused = await paths.dryRunCreate(again);
        assert.strictEqual(refused.status, 403, messageOf(refused));
        assert.match(messageOf(refused), /violates PodSecurity "restricted:v1\.34": host namespaces/);
    });

    it("every variant's client pod is refused under `baseline` (the hostPath data dir at least)", async () => {
        for (const variant of Object.keys(rendered)) {
            const got = await podIn(workload(variant, "DaemonSet"), BASELINE_NS);
            assert.strictEqual(got.status, 403, `${variant}: ${got.message}`);
            assert.match(got.message, /hostPath volumes \(volume "data"\)/, variant);
            assert.doesNotMatch(got.message, /data-dir-owner/, variant);
        }
    });
});
