// The server StatefulSet and what surrounds it, field by field, as the Helm chart's unit tests do.
/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call -- manifests are read as loose JSON */

import * as assert from "assert";
import { DEFAULT_CONSUL_VERSION } from "../../components/config/schema";
import { configChecksum, CHECKSUM_ANNOTATION, sha256 } from "../../components/kubernetes/manifests";
import { ConsulMocks, containsSecret, EvaluatedStack, evaluateProgram, stackFileConfig } from "../mocks";
import {
    assertNoSecretIn,
    configJson,
    container,
    envOf,
    inputs,
    Json,
    k8sObject,
    mount,
    podSpec,
    secretJson,
    T,
    volume,
} from "./helpers";

const dev = () => stackFileConfig("dev").config;
const sts = (r: EvaluatedStack): Json => inputs(r, T.statefulSet, "consul-server");
/** What the agent loads: the main config and the startup-only keys beside it. */
const serverConfig = (r: EvaluatedStack): Json => ({
    ...configJson(r, "consul-server-config", "server.json"),
    ...configJson(r, "consul-server-config", "startup-only.json"),
});

describe("ConsulServers (Pulumi.dev.yaml)", () => {
    let r: EvaluatedStack;
    before(async () => {
        r = await evaluateProgram(dev(), { stack: "dev" });
    });

    it("creates the namespace, and puts every object but the client agents' in it (namespaces.test.ts)", () => {
        const ns = inputs(r, T.namespace, "consul");
        assert.strictEqual(ns.metadata.name, "consul");
        const clients = new Set([
            "consul-k8s-client-ca",
            "consul-clients-config",
            "consul-clients-secret-config",
            "consul-clients-https",
            "consul-clients-daemonset",
        ]);
        for (const res of r.mocks.resources.filter((x) => x.type.startsWith("kubernetes:") && x.type !== T.namespace)) {
            const want = clients.has(res.name) ? "consul-clients" : "consul";
            assert.strictEqual((res.inputs as Json).metadata.namespace, want, res.name);
        }
    });

    it("uses the ambient Kubernetes context when no kubeconfig or context is configured", () => {
        assert.strictEqual(r.mocks.ofType(T.provider).length, 0);
        for (const res of r.mocks.resources.filter((x) => x.type.startsWith("kubernetes:"))) {
            assert.ok(!res.provider, `${res.name} has an explicit provider`);
        }
    });

    it("StatefulSet: replicas, Parallel, headless serviceName, selector", () => {
        const spec = sts(r).spec;
        assert.strictEqual(spec.replicas, 3);
        assert.strictEqual(spec.podManagementPolicy, "Parallel");
        assert.strictEqual(spec.serviceName, "consul-server");
        assert.deepStrictEqual(spec.selector.matchLabels, {
            "app.kubernetes.io/name": "consul",
            "app.kubernetes.io/component": "server",
        });
        for (const [k, v] of Object.entries(spec.selector.matchLabels))
            assert.strictEqual(spec.template.metadata.labels[k], v);
    });

    it("StatefulSet: RollingUpdate with partition 0, PVC retention Retain/Retain", () => {
        assert.deepStrictEqual(sts(r).spec.updateStrategy, { type: "RollingUpdate", rollingUpdate: { partition: 0 } });
        // With no partition the provider waits for the rollout (no skipAwait, no annotations at all).
        assert.strictEqual(sts(r).metadata.annotations, undefined);
        assert.deepStrictEqual(sts(r).spec.persistentVolumeClaimRetentionPolicy, {
            whenDeleted: "Retain",
            whenScaled: "Retain",
        });
    });

    it("StatefulSet: preferred anti-affinity by hostname in the dev stack", () => {
        const anti = podSpec(sts(r)).affinity.podAntiAffinity;
        assert.strictEqual(anti.requiredDuringSchedulingIgnoredDuringExecution, undefined);
        const [pref] = anti.preferredDuringSchedulingIgnoredDuringExecution;
        assert.strictEqual(pref.weight, 100);
        assert.strictEqual(pref.podAffinityTerm.topologyKey, "kubernetes.io/hostname");
        assert.deepStrictEqual(pref.podAffinityTerm.labelSelector.matchLabels, sts(r).spec.selector.matchLabels);
    });

    it("StatefulSet: image, command, advertise the pod IP from the downward API", () => {
        const c = container(sts(r));
        assert.strictEqual(c.image, `hashicorp/consul:${DEFAULT_CONSUL_VERSION}`);
        assert.deepStrictEqual(c.command, ["consul"]);
        assert.deepStrictEqual(c.args, [
            "agent",
            "-config-file=/consul/config/server.json",
            "-config-file=/consul/config/startup-only.json",
            "-config-file=/consul/secret/secret.json",
            "-advertise=$(POD_IP)",
            "-bind=0.0.0.0",
            "-node=$(POD_NAME)",
        ]);
        assert.deepStrictEqual(envOf(c, "POD_IP").valueFrom, { fieldRef: { fieldPath: "status.podIP" } });
        assert.deepStrictEqual(envOf(c, "POD_NAME").valueFrom, { fieldRef: { fieldPath: "metadata.name" } });
        assert.strictEqual(envOf(c, "CONSUL_HTTP_ADDR").value, "https://127.0.0.1:8501");
        assert.strictEqual(envOf(c, "CONSUL_CACERT").value, "/consul/tls/ca.crt");
        for (const e of c.env as Json[])
            assert.strictEqual(e.valueFrom?.secretKeyRef, undefined, `${e.name} reads a Secret`);
    });

    it("StatefulSet: readiness = a leader is known, over HTTPS verified with our CA", () => {
        const probe = container(sts(r)).readinessProbe;
        assert.deepStrictEqual(probe.exec.command.slice(0, 2), ["/bin/sh", "-ec"]);
        const script = probe.exec.command[2] as string;
        assert.match(
            script,
            /curl .*--cacert '\/consul\/tls\/ca\.crt' https:\/\/127\.0\.0\.1:8501\/v1\/status\/leader/,
        );
        assert.match(script, /grep -qE '\^"\[\^"\]\+"\$'/);
        assert.doesNotMatch(script, / -k | --insecure/);
        assert.deepStrictEqual(
            [probe.initialDelaySeconds, probe.periodSeconds, probe.timeoutSeconds, probe.failureThreshold],
            [5, 5, 5, 2],
        );
        assert.strictEqual(container(sts(r)).livenessProbe, undefined);
    });

    it("StatefulSet: terminationGracePeriodSeconds 30, no service account token", () => {
        assert.strictEqual(podSpec(sts(r)).terminationGracePeriodSeconds, 30);
        assert.strictEqual(podSpec(sts(r)).automountServiceAccountToken, false);
    });

    it("StatefulSet: restricted, non-root security context (uid 100, gid 1000)", () => {
        assert.deepStrictEqual(podSpec(sts(r)).securityContext, {
            runAsNonRoot: true,
            runAsUser: 100,
            runAsGroup: 1000,
            fsGroup: 1000,
            seccompProfile: { type: "RuntimeDefault" },
        });
        const sc = container(sts(r)).securityContext;
        assert.strictEqual(sc.runAsNonRoot, true);
        assert.strictEqual(sc.allowPrivilegeEscalation, false);
        assert.strictEqual(sc.readOnlyRootFilesystem, true);
        assert.deepStrictEqual(sc.capabilities, { drop: ["ALL"] });
        assert.deepStrictEqual(sc.seccompProfile, { type: "RuntimeDefault" });
    });

    it("StatefulSet: requests and limits from config", () => {
        assert.deepStrictEqual(container(sts(r)).resources, {
            requests: { cpu: "100m", memory: "256Mi" },
            limits: { cpu: "500m", memory: "256Mi" },
        });
    });

    it("StatefulSet: volumes and mounts (config, secret fragment, TLS, data, tmp)", () => {
        const s = sts(r);
        const c = container(s);
        assert.deepStrictEqual(volume(s, "config").configMap, { name: "consul-server-config" });
        assert.deepStrictEqual(volume(s, "secret-config").secret, {
            secretName: "consul-server-secret-config",
            defaultMode: 0o440,
        });
        assert.deepStrictEqual(volume(s, "tls").secret, { secretName: "consul-server-tls", defaultMode: 0o440 });
        assert.deepStrictEqual(volume(s, "tmp").emptyDir, {});
        assert.deepStrictEqual(mount(c, "data"), { name: "data", mountPath: "/consul/data" });
        assert.deepStrictEqual(mount(c, "config"), { name: "config", mountPath: "/consul/config", readOnly: true });
        assert.deepStrictEqual(mount(c, "secret-config"), {
            name: "secret-config",
            mountPath: "/consul/secret",
            readOnly: true,
        });
        assert.deepStrictEqual(mount(c, "tls"), { name: "tls", mountPath: "/consul/tls", readOnly: true });
        assert.deepStrictEqual(mount(c, "tmp"), { name: "tmp", mountPath: "/tmp" });
    });

    it("StatefulSet: volumeClaimTemplates with size from config and the default StorageClass", () => {
        const [claim] = sts(r).spec.volumeClaimTemplates;
        assert.strictEqual(claim.metadata.name, "data");
        assert.deepStrictEqual(claim.spec.accessModes, ["ReadWriteOnce"]);
        assert.deepStrictEqual(claim.spec.resources.requests, { storage: "1Gi" });
        assert.strictEqual(claim.spec.storageClassName, undefined);
    });

    it("server config: bootstrap_expect = replicas, retry_join on the headless service, no leave, min_quorum", () => {
        const cfg = serverConfig(r);
        assert.strictEqual(cfg.server, true);
        assert.strictEqual(cfg.bootstrap_expect, 3);
        assert.deepStrictEqual(cfg.retry_join, ["consul-server.consul.svc:8301"]);
        assert.strictEqual(cfg.leave_on_terminate, false);
        assert.strictEqual(cfg.skip_leave_on_interrupt, true);
        assert.strictEqual(cfg.autopilot.min_quorum, 3);
        assert.strictEqual(cfg.data_dir, "/consul/data");
        assert.deepStrictEqual(
            [cfg.tls.defaults.ca_file, cfg.tls.defaults.cert_file, cfg.tls.defaults.key_file],
            ["/consul/tls/ca.crt", "/consul/tls/tls.crt", "/consul/tls/tls.key"],
        );
        assert.strictEqual(cfg.log_level, "DEBUG");
        assert.strictEqual(cfg.encrypt, undefined);
        assert.strictEqual(cfg.acl.tokens, undefined);
    });

    it("the secret fragment holds the gossip key and both tokens, in a Secret only", () => {
        const fragment = secretJson(r, "consul-server-secret-config", "secret.json");
        assert.strictEqual(fragment.encrypt, r.outputs.gossipKey);
        assert.strictEqual(fragment.acl.tokens.initial_management, r.outputs.aclManagementToken);
        assert.match(fragment.acl.tokens.agent, /^[0-9a-f-]{36}$/);
        assert.ok(containsSecret(k8sObject(r, T.secret, "consul-server-secret-config").rawInputs));
        const tls = k8sObject(r, T.secret, "consul-server-tls");
        assert.strictEqual((tls.inputs as Json).type, "kubernetes.io/tls");
        assert.deepStrictEqual(Object.keys((tls.inputs as Json).stringData).sort(), ["ca.crt", "tls.crt", "tls.key"]);
        assert.strictEqual((tls.inputs as Json).stringData["ca.crt"], r.outputs.caCertPem);
        assert.ok(containsSecret(tls.rawInputs));
    });

    it("no secret in any ConfigMap, Service, PDB, StatefulSet, DaemonSet or Job (args, env, annotations)", () => {
        for (const res of r.mocks.resources.filter((x) => x.type.startsWith("kubernetes:") && x.type !== T.secret)) {
            assert.ok(!containsSecret(res.rawInputs), `${res.name} carries a secret-wrapped input`);
            assertNoSecretIn(r, JSON.stringify(res.inputs), res.name);
        }
    });

    it("checksum annotation = sha256 over config, CA, cert and the secret fragment's hash", () => {
        const annotation = sts(r).spec.template.metadata.annotations[CHECKSUM_ANNOTATION] as string;
        assert.match(annotation, /^[0-9a-f]{64}$/);
        const cm = inputs(r, T.configMap, "consul-server-config").data["server.json"] as string;
        const tls = inputs(r, T.secret, "consul-server-tls").stringData;
        const fragment = inputs(r, T.secret, "consul-server-secret-config").stringData["secret.json"] as string;
        assert.strictEqual(annotation, configChecksum([cm, tls["ca.crt"], tls["tls.crt"], sha256(fragment)]));
        assert.notStrictEqual(annotation, configChecksum([cm, tls["ca.crt"], tls["tls.crt"], fragment]));
    });

    it("headless Service: clusterIP None, publishNotReadyAddresses, every agent port", () => {
        const svc = inputs(r, T.service, "consul-server").spec;
        assert.strictEqual(svc.clusterIP, "None");
        assert.strictEqual(svc.publishNotReadyAddresses, true);
        assert.deepStrictEqual(svc.selector, sts(r).spec.selector.matchLabels);
        const ports = (svc.ports as Json[]).map((p) => `${p.port}/${p.protocol}`).sort();
        assert.deepStrictEqual(ports, [
            "8300/TCP",
            "8301/TCP",
            "8301/UDP",
            "8302/TCP",
            "8302/UDP",
            "8501/TCP",
            "8503/TCP",
            "8600/TCP",
            "8600/UDP",
        ]);
        const containerPorts = (container(sts(r)).ports as Json[])
            .map((p) => `${p.containerPort}/${p.protocol}`)
            .sort();
        assert.deepStrictEqual(containerPorts, ports);
    });

    it("UI Service: ClusterIP by default, 443 to the HTTPS port", () => {
        const svc = inputs(r, T.service, "consul-ui").spec;
        assert.strictEqual(svc.type, "ClusterIP");
        assert.deepStrictEqual(svc.ports, [{ name: "https", port: 443, targetPort: 8501, protocol: "TCP" }]);
        assert.deepStrictEqual(svc.selector, sts(r).spec.selector.matchLabels);
    });

    it("PodDisruptionBudget: maxUnavailable 1 for 3 servers", () => {
        const pdb = inputs(r, T.pdb, "consul-server").spec;
        assert.strictEqual(pdb.maxUnavailable, 1);
        assert.deepStrictEqual(pdb.selector.matchLabels, sts(r).spec.selector.matchLabels);
    });

    it("server certificate SANs cover every name peers, clients and the UI use", () => {
        const csr = r.mocks.byName("consul-pki-server-csr").inputs as Json;
        const cfg = serverConfig(r);
        const joinHost = (cfg.retry_join[0] as string).replace(/:\d+$/, "");
        for (const name of [
            "server.dc1.consul",
            "*.server.dc1.consul",
            "localhost",
            joinHost,
            "consul-server",
            "consul-server.consul",
            "consul-server.consul.svc.cluster.local",
            "*.consul-server.consul.svc",
            "*.consul-server.consul.svc.cluster.local",
            "consul-ui",
            "consul-ui.consul.svc",
        ]) {
            assert.ok((csr.dnsNames as string[]).includes(name), `server cert lacks ${name}`);
        }
        assert.deepStrictEqual([...(csr.ipAddresses as string[])].sort(), ["127.0.0.1", "::1"]);
    });
});

describe("ConsulServers variants", () => {
    it("required anti-affinity by default", async () => {
        const { config } = stackFileConfig("dev");
        delete config.antiAffinity;
        const r = await evaluateProgram(config, { stack: "dev" });
        const anti = podSpec(sts(r)).affinity.podAntiAffinity;
        assert.strictEqual(anti.preferredDuringSchedulingIgnoredDuringExecution, undefined);
        const [term] = anti.requiredDuringSchedulingIgnoredDuringExecution;
        assert.strictEqual(term.topologyKey, "kubernetes.io/hostname");
        assert.deepStrictEqual(term.labelSelector.matchLabels, sts(r).spec.selector.matchLabels);
    });

    it("1 server: replicas 1, bootstrap_expect 1, PDB maxUnavailable 0", async () => {
        const r = await evaluateProgram({ ...dev(), serverCount: "1" }, { stack: "dev" });
        assert.strictEqual(sts(r).spec.replicas, 1);
        assert.strictEqual(serverConfig(r).bootstrap_expect, 1);
        assert.strictEqual(serverConfig(r).autopilot.min_quorum, 1);
        assert.strictEqual(inputs(r, T.pdb, "consul-server").spec.maxUnavailable, 0);
    });

    it("5 servers: replicas 5, bootstrap_expect 5, PDB maxUnavailable 1", async () => {
        const r = await evaluateProgram({ ...dev(), serverCount: "5" }, { stack: "dev" });
        assert.strictEqual(sts(r).spec.replicas, 5);
        assert.strictEqual(serverConfig(r).bootstrap_expect, 5);
        assert.strictEqual(inputs(r, T.pdb, "consul-server").spec.maxUnavailable, 1);
    });

    it("StorageClass, size, PVC retention, partition, image, UI type and namespace from config", async () => {
        const r = await evaluateProgram(
            {
                ...dev(),
                storageClass: "glusterfs",
                storageSize: "20Gi",
                pvcRetentionWhenDeleted: "Delete",
                pvcRetentionWhenScaled: "Delete",
                updatePartition: "2",
                image: "registry.example.com/consul:1.16.2",
                uiServiceType: "LoadBalancer",
                k8sNamespace: "infra",
            },
            { stack: "dev" },
        );
        const s = sts(r);
        assert.strictEqual(s.metadata.namespace, "infra");
        assert.strictEqual(s.spec.volumeClaimTemplates[0].spec.storageClassName, "glusterfs");
        assert.deepStrictEqual(s.spec.volumeClaimTemplates[0].spec.resources.requests, { storage: "20Gi" });
        assert.deepStrictEqual(s.spec.persistentVolumeClaimRetentionPolicy, {
            whenDeleted: "Delete",
            whenScaled: "Delete",
        });
        assert.deepStrictEqual(s.spec.updateStrategy.rollingUpdate, { partition: 2 });
        // A staged rollout never reaches currentRevision == updateRevision, the provider's wait.
        assert.deepStrictEqual(s.metadata.annotations, { "pulumi.com/skipAwait": "true" });
        assert.strictEqual(container(s).image, "registry.example.com/consul:1.16.2");
        assert.strictEqual(inputs(r, T.service, "consul-ui").spec.type, "LoadBalancer");
        assert.deepStrictEqual(serverConfig(r).retry_join, ["consul-server.infra.svc:8301"]);
        const csr = r.mocks.byName("consul-pki-server-csr").inputs as Json;
        assert.ok((csr.dnsNames as string[]).includes("consul-server.infra.svc"));
    });

    it("no namespace is created when k8sCreateNamespace is false", async () => {
        const r = await evaluateProgram({ ...dev(), k8sCreateNamespace: "false" }, { stack: "dev" });
        assert.strictEqual(r.mocks.ofType(T.namespace).length, 0);
        assert.strictEqual(sts(r).metadata.namespace, "consul");
    });

    it("an explicit provider from k8sContext / k8sKubeconfig carries every Kubernetes object", async () => {
        const r = await evaluateProgram(
            { ...dev(), k8sContext: "kind-dev", k8sKubeconfig: __filename },
            { stack: "dev" },
        );
        const [provider] = r.mocks.ofType(T.provider);
        assert.strictEqual((provider.inputs as Json).context, "kind-dev");
        assert.strictEqual((provider.inputs as Json).kubeconfig, __filename);
        const k8sObjects = r.mocks.resources.filter((x) => x.type.startsWith("kubernetes:"));
        assert.ok(k8sObjects.length >= 10);
        for (const res of k8sObjects) assert.match(res.provider ?? "", /consul-k8s-provider/, res.name);
    });

    describe("checksum annotation", () => {
        // Certificates and keys are minted afresh per evaluation, so compare runs by recomputing
        // the checksum from the run's own parts and by comparing the config part across runs.
        const parts = (r: EvaluatedStack) => {
            const tls = inputs(r, T.secret, "consul-server-tls").stringData;
            return {
                config: inputs(r, T.configMap, "consul-server-config").data["server.json"] as string,
                ca: tls["ca.crt"] as string,
                cert: tls["tls.crt"] as string,
                secret: inputs(r, T.secret, "consul-server-secret-config").stringData["secret.json"] as string,
                annotation: sts(r).spec.template.metadata.annotations[CHECKSUM_ANNOTATION] as string,
            };
        };
        let base: ReturnType<typeof parts>;
        before(async () => {
            base = parts(await evaluateProgram(dev(), { stack: "dev" }));
        });

        it("changes when the agent config changes", async () => {
            const changed = parts(await evaluateProgram({ ...dev(), logLevel: "warn" }, { stack: "dev" }));
            assert.notStrictEqual(changed.config, base.config);
            assert.notStrictEqual(
                configChecksum([changed.config, base.ca, base.cert, sha256(base.secret)]),
                base.annotation,
            );
        });

        it("changes when a certificate or the secret fragment changes", () => {
            const others = [
                [base.config, base.ca, base.cert + "\n", sha256(base.secret)],
                [base.config, base.ca, base.cert, sha256(base.secret + " ")],
            ];
            for (const p of others) assert.notStrictEqual(configChecksum(p), base.annotation);
        });

        it("does not change with the server count: scaling rolls no pod, only the startup-only keys follow", async () => {
            // A roll while servers are scaled down would restart the ones that stay while the
            // departing ones still count as Raft voters (issue 14, scenario 6).
            for (const serverCount of ["5", "1"]) {
                const r = await evaluateProgram({ ...dev(), serverCount }, { stack: "dev" });
                const other = parts(r);
                assert.strictEqual(other.config, base.config, `serverCount ${serverCount}`);
                assert.strictEqual(sts(r).spec.replicas, Number(serverCount));
                const startupOnly = configJson(r, "consul-server-config", "startup-only.json");
                assert.strictEqual(startupOnly.bootstrap_expect, Number(serverCount));
                assert.strictEqual(startupOnly.autopilot.min_quorum, Number(serverCount));
                assert.strictEqual(
                    other.annotation,
                    configChecksum([other.config, other.ca, other.cert, sha256(other.secret)]),
                );
            }
            assert.ok(!("bootstrap_expect" in JSON.parse(base.config)), "bootstrap_expect in the main config");
        });

        it("does not change for StatefulSet-only changes (partition, resources)", async () => {
            const other = parts(
                await evaluateProgram({ ...dev(), updatePartition: "1", serverCpuLimit: "1" }, { stack: "dev" }),
            );
            assert.strictEqual(other.config, base.config);
            assert.strictEqual(
                configChecksum([other.config, base.ca, base.cert, sha256(base.secret)]),
                base.annotation,
            );
            assert.strictEqual(
                other.annotation,
                configChecksum([other.config, other.ca, other.cert, sha256(other.secret)]),
            );
        });
    });
});

describe("bad Kubernetes inputs fail before anything is created", () => {
    const cases: { what: string; config: Record<string, string>; message: RegExp }[] = [
        { what: "an even replica count", config: { serverCount: "4" }, message: /consul:serverCount = 4: must be odd/ },
        {
            what: "a bad storage size",
            config: { storageSize: "10 gigs" },
            message: /consul:storageSize = "10 gigs": must be a Kubernetes quantity/,
        },
        {
            what: "a hybrid stack without server addresses",
            config: { topology: "hybrid", sshPrivateKeyPath: __filename },
            message: /consul:serverHosts = \[\]: the hybrid topology needs server hosts; list them/,
        },
        {
            what: "a namespace that isn't a DNS label",
            config: { k8sNamespace: "Consul_NS" },
            message: /consul:k8sNamespace = "Consul_NS": a namespace must be a DNS label/,
        },
        {
            what: "requests above limits",
            config: { serverCpuRequest: "2", serverCpuLimit: "1" },
            message: /consul:serverCpuRequest = "2": is above consul:serverCpuLimit/,
        },
        {
            what: "an application namespace that isn't a DNS label",
            config: { k8sAppNamespaces: JSON.stringify(["Shop"]) },
            message: /consul:k8sAppNamespaces = "Shop": each application namespace must be a DNS label/,
        },
        {
            what: "an unknown client network mode",
            config: { clientNetworkMode: "bridge" },
            message: /consul:clientNetworkMode = "bridge": must be one of hostNetwork, hostPort/,
        },
    ];
    for (const c of cases) {
        it(`rejects ${c.what}`, async () => {
            const mocks = new ConsulMocks();
            await assert.rejects(
                evaluateProgram({ ...dev(), ...c.config }, { stack: "dev", mocks }),
                (err: unknown) => (err as Error).name === "ConfigError" && c.message.test((err as Error).message),
            );
            assert.strictEqual(mocks.resources.length, 0);
        });
    }
});
