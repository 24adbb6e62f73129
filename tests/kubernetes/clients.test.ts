// Client agents (DaemonSet), the ACL agent-token Job, what apps get, and the container scripts.
/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call -- manifests are read as loose JSON */

import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CHECKSUM_ANNOTATION, configChecksum, sha256 } from "../../components/kubernetes/manifests";
import {
    aclAgentTokenScript,
    clientStartScript,
    dataDirOwnerScript,
    leaderProbeScript,
} from "../../components/kubernetes/scripts";
import { shellQuote } from "../../components/shell";
import { containsSecret, EvaluatedStack, evaluateProgram, stackFileConfig, withOperatorHome } from "../mocks";
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
import { withPinnedKeys } from "../vm/fixtures";

const dev = () => stackFileConfig("dev").config;
const ds = (r: EvaluatedStack): Json => inputs(r, T.daemonSet, "consul-client");
/** What the agent loads: the main config and the startup-only keys beside it. */
const clientConfig = (r: EvaluatedStack): Json => ({
    ...configJson(r, "consul-client-config", "client.json"),
    ...configJson(r, "consul-client-config", "startup-only.json"),
});
const startScript = (r: EvaluatedStack): string => container(ds(r)).command[2] as string;

describe("ConsulClients (Pulumi.dev.yaml)", () => {
    let r: EvaluatedStack;
    before(async () => {
        r = await evaluateProgram(dev(), { stack: "dev" });
    });

    it("DaemonSet: hostNetwork with ClusterFirstWithHostNet DNS, no hostPorts needed", () => {
        const spec = podSpec(ds(r));
        assert.strictEqual(spec.hostNetwork, true);
        assert.strictEqual(spec.dnsPolicy, "ClusterFirstWithHostNet");
        for (const p of container(ds(r)).ports as Json[]) assert.strictEqual(p.hostPort, undefined, p.name);
    });

    it("DaemonSet: node name = spec.nodeName, advertise = status.hostIP, via flags not config", () => {
        const c = container(ds(r));
        assert.deepStrictEqual(envOf(c, "NODE_NAME").valueFrom, { fieldRef: { fieldPath: "spec.nodeName" } });
        assert.deepStrictEqual(envOf(c, "HOST_IP").valueFrom, { fieldRef: { fieldPath: "status.hostIP" } });
        assert.deepStrictEqual(envOf(c, "POD_IP").valueFrom, { fieldRef: { fieldPath: "status.podIP" } });
        assert.deepStrictEqual(c.command.slice(0, 2), ["/bin/sh", "-ec"]);
        assert.match(startScript(r), /^ {4}-node="\$NODE_NAME" \\$/m);
        assert.match(startScript(r), /^ {4}-advertise="\$HOST_IP" \\$/m);
        assert.match(startScript(r), /^exec consul agent \\$/m);
        for (const e of c.env as Json[])
            assert.strictEqual(e.valueFrom?.secretKeyRef, undefined, `${e.name} reads a Secret`);
    });

    it("DaemonSet: data dir on a hostPath (DirectoryOrCreate) handed to the consul user", () => {
        const s = ds(r);
        assert.deepStrictEqual(volume(s, "data").hostPath, {
            path: "/var/lib/consul-client",
            type: "DirectoryOrCreate",
        });
        assert.deepStrictEqual(mount(container(s), "data"), { name: "data", mountPath: "/consul/data" });
        const [init] = podSpec(s).initContainers;
        assert.strictEqual(init.name, "data-dir-owner");
        assert.strictEqual(init.command[2], "chown 100:1000 '/consul/data'\n");
        // CHOWN alone: the agent, owner from then on, sets the mode itself (no FOWNER).
        assert.deepStrictEqual(init.securityContext.capabilities, { drop: ["ALL"], add: ["CHOWN"] });
        assert.strictEqual(init.securityContext.allowPrivilegeEscalation, false);
        assert.match(startScript(r), /^set -eu\nchmod 0700 '\/consul\/data'\n/);
        assert.strictEqual(clientConfig(r).data_dir, "/consul/data");
    });

    it("DaemonSet: config, secret fragment, HTTPS cert, CA and the generated address file are mounted", () => {
        const s = ds(r);
        const c = container(s);
        assert.deepStrictEqual(volume(s, "config").configMap, { name: "consul-client-config" });
        assert.deepStrictEqual(volume(s, "secret-config").secret, {
            secretName: "consul-client-secret-config",
            defaultMode: 0o440,
        });
        assert.deepStrictEqual(volume(s, "tls").secret, { secretName: "consul-client-https", defaultMode: 0o440 });
        assert.deepStrictEqual(volume(s, "ca").configMap, { name: "consul-ca" });
        assert.deepStrictEqual(volume(s, "extra").emptyDir, {});
        for (const [name, at] of [
            ["config", "/consul/config"],
            ["secret-config", "/consul/secret"],
            ["tls", "/consul/tls"],
            ["ca", "/consul/ca"],
        ]) {
            assert.deepStrictEqual(mount(c, name), { name, mountPath: at, readOnly: true });
        }
        assert.deepStrictEqual(mount(c, "extra"), { name: "extra", mountPath: "/consul/extra" });
        for (const file of [
            "/consul/config/client.json",
            "/consul/config/startup-only.json",
            "/consul/secret/secret.json",
            "/consul/extra/addresses.json",
        ]) {
            assert.ok(startScript(r).includes(`-config-file=${shellQuote(file)}`), file);
        }
    });

    it("DaemonSet: tolerates every taint by default", () => {
        assert.deepStrictEqual(podSpec(ds(r)).tolerations, [{ operator: "Exists" }]);
    });

    it("DaemonSet: readiness on the leader endpoint over HTTPS with our CA", () => {
        const probe = container(ds(r)).readinessProbe;
        assert.match(
            probe.exec.command[2],
            /--cacert '\/consul\/ca\/ca\.crt' https:\/\/127\.0\.0\.1:8501\/v1\/status\/leader/,
        );
    });

    it("DaemonSet: restricted non-root security context, resources from config", () => {
        assert.strictEqual(podSpec(ds(r)).securityContext.runAsUser, 100);
        assert.strictEqual(podSpec(ds(r)).securityContext.runAsNonRoot, true);
        const sc = container(ds(r)).securityContext;
        assert.deepStrictEqual(
            [sc.runAsNonRoot, sc.allowPrivilegeEscalation, sc.readOnlyRootFilesystem, sc.capabilities.drop],
            [true, false, true, ["ALL"]],
        );
        assert.deepStrictEqual(container(ds(r)).resources, {
            requests: { cpu: "100m", memory: "128Mi" },
            limits: { cpu: "100m", memory: "128Mi" },
        });
    });

    it("DaemonSet: Prometheus scrape annotations and the checksum annotation", () => {
        const annotations = ds(r).spec.template.metadata.annotations;
        assert.strictEqual(annotations["prometheus.io/scrape"], "true");
        assert.strictEqual(annotations["prometheus.io/scheme"], "https");
        assert.strictEqual(annotations["prometheus.io/path"], "/v1/agent/metrics");
        assert.strictEqual(annotations["prometheus.io/port"], "8501");
        assert.ok(clientConfig(r).telemetry.prometheus_retention_time);
        const https = inputs(r, T.secret, "consul-client-https").stringData;
        const fragment = inputs(r, T.secret, "consul-client-secret-config").stringData["secret.json"] as string;
        const cm = inputs(r, T.configMap, "consul-client-config").data["client.json"] as string;
        assert.strictEqual(
            annotations[CHECKSUM_ANNOTATION],
            configChecksum([cm, r.outputs.caCertPem as string, https["tls.crt"], sha256(fragment)]),
        );
    });

    it("client config: auto_encrypt, leave_on_terminate, retry_join to in-cluster servers, our HTTPS cert", () => {
        const cfg = clientConfig(r);
        assert.strictEqual(cfg.server, false);
        assert.strictEqual(cfg.leave_on_terminate, true);
        assert.deepStrictEqual(cfg.auto_encrypt, { tls: true });
        assert.deepStrictEqual(cfg.retry_join, ["consul-server.consul.svc:8301"]);
        assert.strictEqual(cfg.tls.defaults.ca_file, "/consul/ca/ca.crt");
        assert.strictEqual(cfg.tls.defaults.cert_file, undefined);
        assert.deepStrictEqual(cfg.tls.https, {
            verify_incoming: false,
            cert_file: "/consul/tls/tls.crt",
            key_file: "/consul/tls/tls.key",
        });
        assert.strictEqual(cfg.bootstrap_expect, undefined);
        assert.strictEqual(cfg.encrypt, undefined);
    });

    it("client config: the agent registers itself as a monitored service (declaratively)", () => {
        const [svc] = clientConfig(r).services;
        assert.strictEqual(svc.name, "consul-client");
        assert.deepStrictEqual(svc.tags, ["consul-client", "prometheus"]);
        assert.strictEqual(svc.port, 8501);
        assert.strictEqual(svc.check.http, "https://127.0.0.1:8501/v1/status/leader");
        assert.strictEqual(svc.check.interval, "30s");
        assert.strictEqual(podSpec(ds(r)).containers[0].lifecycle, undefined);
    });

    it("client secret fragment: gossip key, agent token, config-file registration token; no management token", () => {
        const fragment = secretJson(r, "consul-client-secret-config", "secret.json");
        assert.strictEqual(fragment.encrypt, r.outputs.gossipKey);
        assert.match(fragment.acl.tokens.agent, /^[0-9a-f-]{36}$/);
        assert.strictEqual(fragment.acl.tokens.config_file_service_registration, fragment.acl.tokens.agent);
        assert.strictEqual(fragment.acl.tokens.initial_management, undefined);
        assert.ok(!JSON.stringify(fragment).includes(String(r.outputs.aclManagementToken)));
        assert.ok(containsSecret(k8sObject(r, T.secret, "consul-client-secret-config").rawInputs));
        assert.ok(containsSecret(k8sObject(r, T.secret, "consul-client-https").rawInputs));
    });

    it("the DaemonSet and its ConfigMap carry no secret", () => {
        for (const res of [
            k8sObject(r, T.daemonSet, "consul-client"),
            k8sObject(r, T.configMap, "consul-client-config"),
        ]) {
            assert.ok(!containsSecret(res.rawInputs), res.name);
            assertNoSecretIn(r, JSON.stringify(res.inputs), res.name);
        }
    });

    describe("ACL agent token Job", () => {
        it("creates the agent policy: node_prefix write, service_prefix read, own service write", () => {
            const body = JSON.parse(inputs(r, T.configMap, "consul-acl-agent-policy").data["agent-policy.json"]);
            assert.strictEqual(body.Name, "consul-agents");
            assert.deepStrictEqual(JSON.parse(body.Rules), {
                node_prefix: { "": { policy: "write" } },
                service_prefix: { "": { policy: "read" } },
                service: { "consul-client": { policy: "write" } },
            });
        });

        it("the token body carries the agents' fixed SecretID, in a Secret, with the header files", () => {
            const secret = k8sObject(r, T.secret, "consul-acl-init");
            const data = (secret.inputs as Json).stringData;
            const agentToken = secretJson(r, "consul-client-secret-config", "secret.json").acl.tokens.agent;
            assert.deepStrictEqual(JSON.parse(data["agent-token.json"]), {
                Description: "Consul agent token (created by Pulumi)",
                Local: false,
                Policies: [{ Name: "consul-agents" }],
                SecretID: agentToken,
            });
            assert.strictEqual(
                data["management-token.header"],
                `X-Consul-Token: ${String(r.outputs.aclManagementToken)}\n`,
            );
            assert.strictEqual(data["agent-token.header"], `X-Consul-Token: ${agentToken}\n`);
            assert.ok(containsSecret(secret.rawInputs));
        });

        it("the Job reads tokens from mounted files only; its env holds server addresses", () => {
            const job = k8sObject(r, T.job, "consul-acl-agent-token");
            assert.ok(!containsSecret(job.rawInputs));
            assertNoSecretIn(r, JSON.stringify(job.inputs), "the Job");
            const c = container(job.inputs, "create-agent-token");
            assert.deepStrictEqual(c.env, [{ name: "CONSUL_ADDRS", value: "https://consul-server.consul.svc:8501" }]);
            assert.deepStrictEqual(volume(job.inputs, "acl").secret, {
                secretName: "consul-acl-init",
                defaultMode: 0o440,
            });
            assert.deepStrictEqual(mount(c, "acl"), { name: "acl", mountPath: "/consul/acl", readOnly: true });
            assert.strictEqual(podSpec(job.inputs).restartPolicy, "OnFailure");
            assert.strictEqual(podSpec(job.inputs).securityContext.runAsNonRoot, true);
            const script = c.command[2] as string;
            assert.match(script, /-H @'\/consul\/acl\/management-token\.header'/);
            assert.match(script, /v1\/acl\/token\/self/);
        });
    });

    describe("what applications get", () => {
        it("consulHttpAddr works after a HOST_IP downward-API variable; the TLS name is exported", () => {
            assert.strictEqual(r.outputs.consulHttpAddr, "https://$(HOST_IP):8501");
            assert.strictEqual(r.outputs.consulTlsServerName, "client.dc1.consul");
        });

        it("the CA is a ConfigMap (not a secret) named consul-ca", () => {
            const ca = k8sObject(r, T.configMap, "consul-ca", "consul");
            assert.deepStrictEqual((ca.inputs as Json).data, { "ca.crt": r.outputs.caCertPem });
            assert.ok(!containsSecret(ca.rawInputs));
        });

        it("the agents' HTTPS certificate is ours: client.<dc>.<domain> + loopback, server auth only", () => {
            const csr = r.mocks.byName("consul-pki-client-https-csr").inputs as Json;
            assert.strictEqual(csr.subject.commonName, "client.dc1.consul");
            assert.deepStrictEqual([...csr.dnsNames].sort(), ["client.dc1.consul", "localhost"]);
            assert.deepStrictEqual([...csr.ipAddresses].sort(), ["127.0.0.1", "::1"]);
            const cert = r.mocks.byName("consul-pki-client-https").inputs as Json;
            assert.deepStrictEqual(cert.allowedUses, ["digital_signature", "key_encipherment", "server_auth"]);
            assert.ok(!(csr.dnsNames as string[]).some((n) => n.startsWith("server.")));
        });

        it("app namespaces get the CA ConfigMap too", async () => {
            const r2 = await evaluateProgram(
                { ...dev(), k8sAppNamespaces: JSON.stringify(["shop", "billing"]) },
                {
                    stack: "dev",
                },
            );
            for (const ns of ["consul", "shop", "billing"]) {
                const ca = k8sObject(r2, T.configMap, "consul-ca", ns);
                assert.deepStrictEqual((ca.inputs as Json).data, { "ca.crt": r2.outputs.caCertPem });
            }
        });
    });
});

describe("ConsulClients variants", () => {
    it("hostPort mode: pod network, ClusterFirst DNS, hostPorts for HTTPS, gossip (tcp+udp), gRPC and DNS", async () => {
        const r = await evaluateProgram({ ...dev(), clientNetworkMode: "hostPort" }, { stack: "dev" });
        assert.strictEqual(podSpec(ds(r)).hostNetwork, false);
        assert.strictEqual(podSpec(ds(r)).dnsPolicy, "ClusterFirst");
        const ports = (container(ds(r)).ports as Json[]).map((p) => `${p.name}:${p.hostPort}/${p.protocol}`).sort();
        assert.deepStrictEqual(ports, [
            "dns-tcp:8600/TCP",
            "dns-udp:8600/UDP",
            "grpc-tls:8503/TCP",
            "https:8501/TCP",
            "serflan-tcp:8301/TCP",
            "serflan-udp:8301/UDP",
        ]);
        // Still advertising the host address, which the hostPorts make reachable.
        assert.match(startScript(r), /-advertise="\$HOST_IP"/);
    });

    it("clientTolerateAll false drops the tolerations; clientSelfRegister false drops the service and its token", async () => {
        const r = await evaluateProgram(
            { ...dev(), clientTolerateAll: "false", clientSelfRegister: "false", clientDataHostPath: "/data/consul" },
            { stack: "dev" },
        );
        assert.strictEqual(podSpec(ds(r)).tolerations, undefined);
        assert.strictEqual(clientConfig(r).services, undefined);
        const fragment = secretJson(r, "consul-client-secret-config", "secret.json");
        assert.strictEqual(fragment.acl.tokens.config_file_service_registration, undefined);
        assert.strictEqual(volume(ds(r), "data").hostPath.path, "/data/consul");
    });

    it("clientsEnabled false: servers only", async () => {
        const r = await evaluateProgram({ ...dev(), clientsEnabled: "false" }, { stack: "dev" });
        assert.strictEqual(r.mocks.ofType(T.daemonSet).length, 0);
        assert.strictEqual(r.mocks.ofType(T.statefulSet).length, 1);
    });

    describe("hybrid (seed 003): client agents in Kubernetes, servers on VMs", () => {
        let operator: ReturnType<typeof withOperatorHome>;
        let r: EvaluatedStack;
        before(async () => {
            operator = withOperatorHome();
            r = await evaluateProgram(
                withPinnedKeys({
                    topology: "hybrid",
                    serverHosts: JSON.stringify(["s1=10.20.0.11", "s2=10.20.0.12", "s3=consul-3.example.com"]),
                    sshPrivateKeyPath: "~/.ssh/consul_ed25519",
                }),
                { stack: "prod" },
            );
        });
        after(() => operator.restore());

        it("creates no server StatefulSet or server objects, only the DaemonSet", () => {
            assert.strictEqual(r.mocks.ofType(T.statefulSet).length, 0);
            assert.strictEqual(r.mocks.ofType(T.pdb).length, 0);
            assert.strictEqual(r.mocks.ofType(T.service).length, 0);
            assert.strictEqual(r.mocks.ofType(T.daemonSet).length, 1);
        });

        it("retry_join lists the VM servers' addresses", () => {
            assert.deepStrictEqual(clientConfig(r).retry_join, [
                "10.20.0.11:8301",
                "10.20.0.12:8301",
                "consul-3.example.com:8301",
            ]);
        });

        it("the ACL Job talks to the VM servers, whose certificates carry their addresses", () => {
            const c = container(inputs(r, T.job, "consul-acl-agent-token"), "create-agent-token");
            assert.strictEqual(
                envOf(c, "CONSUL_ADDRS").value,
                "https://10.20.0.11:8501 https://10.20.0.12:8501 https://consul-3.example.com:8501",
            );
            assert.ok((r.mocks.byName("consul-pki-s1-csr").inputs as Json).ipAddresses.includes("10.20.0.11"));
            assert.ok((r.mocks.byName("consul-pki-s3-csr").inputs as Json).dnsNames.includes("consul-3.example.com"));
        });

        it("deploys the VM servers over SSH, and only then the ACL Job and the DaemonSet", () => {
            const serverCommands = r.mocks
                .ofType("command:remote:Command")
                .filter((c) => /^consul-vm-server-s\d-agent$/.test(c.name));
            assert.deepStrictEqual(
                serverCommands.map((c) => c.name),
                ["consul-vm-server-s1-agent", "consul-vm-server-s2-agent", "consul-vm-server-s3-agent"],
            );
            // Children of a component register only once the component has, and the component
            // waits for its dependsOn: so the components must wait, and their objects come later.
            for (const [component, child] of [
                ["consul-clients", "consul-clients-daemonset"],
                ["consul-acl-agent-token", "consul-acl-agent-token-job"],
            ]) {
                const parent = r.mocks.byName(component);
                for (const server of serverCommands) {
                    assert.ok(
                        parent.dependencies.some((urn) => urn.endsWith(`::${server.name}`)),
                        `${component} does not wait for ${server.name}`,
                    );
                    assert.ok(r.mocks.byName(child).order > server.order, `${child} registered before ${server.name}`);
                }
            }
        });
    });
});

describe("container scripts", () => {
    const scripts: Record<string, string> = {
        "client start": clientStartScript({
            configFiles: ["/consul/config/client.json", "/consul/secret/secret.json"],
            addressConfigFile: "/consul/extra/addresses.json",
            dataDir: "/consul/data",
            secretConfigFile: "/consul/secret/secret.json",
        }),
        "data dir owner": dataDirOwnerScript("/consul/data", 100, 1000),
        "leader probe": leaderProbeScript(8501, "/consul/ca/ca.crt"),
        "ACL agent token": aclAgentTokenScript({
            caFile: "/consul/ca/ca.crt",
            managementHeaderFile: "/consul/acl/management-token.header",
            agentHeaderFile: "/consul/acl/agent-token.header",
            policyFile: "/consul/acl-policy/agent-policy.json",
            policyName: "consul-agents",
            tokenFile: "/consul/acl/agent-token.json",
            maxAttempts: 3,
        }),
    };

    for (const [name, script] of Object.entries(scripts)) {
        it(`${name} script passes shellcheck (POSIX sh)`, () => {
            const out = spawnSync("shellcheck", ["-s", "sh", "-"], { input: script, encoding: "utf8" });
            assert.strictEqual(out.status, 0, out.stdout + out.stderr);
        });
    }

    it("every script in the rendered dev stack passes shellcheck", async () => {
        const r = await evaluateProgram(dev(), { stack: "dev" });
        const all: string[] = [];
        for (const res of r.mocks.resources.filter((x) =>
            [T.statefulSet, T.daemonSet, T.job].includes(x.type as never),
        )) {
            const spec = podSpec(res.inputs);
            for (const c of [...(spec.initContainers ?? []), ...spec.containers] as Json[]) {
                if (c.command?.[0] === "/bin/sh") all.push(c.command[2]);
                if (c.readinessProbe?.exec) all.push(c.readinessProbe.exec.command[2]);
            }
        }
        assert.ok(all.length >= 5, `found ${all.length} scripts`);
        for (const script of all) {
            const out = spawnSync("shellcheck", ["-s", "sh", "-"], { input: script, encoding: "utf8" });
            assert.strictEqual(out.status, 0, out.stdout + out.stderr);
        }
    });

    describe("client start script, run with a stand-in consul", () => {
        let dir: string;
        const run = (env: Record<string, string>) => {
            const script = clientStartScript({
                configFiles: ["/c/client.json", "/c/secret.json"],
                addressConfigFile: path.join(dir, "addresses.json"),
                dataDir: path.join(dir, "data"),
                secretConfigFile: path.join(dir, "secret.json"),
            });
            return spawnSync("sh", ["-ec", script], {
                encoding: "utf8",
                env: { PATH: `${dir}:/usr/bin:/bin`, ...env },
            });
        };
        before(() => {
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-start-"));
            fs.mkdirSync(path.join(dir, "data"), { mode: 0o755 });
            fs.writeFileSync(path.join(dir, "consul"), '#!/bin/sh\nprintf "%s\\n" "$@"\n', { mode: 0o755 });
        });
        after(() => fs.rmSync(dir, { recursive: true, force: true }));

        it("writes the auto_encrypt IP SANs and execs the agent with node name and advertise address", () => {
            const out = run({ HOST_IP: "10.0.0.5", POD_IP: "10.244.1.7", NODE_NAME: "node-a" });
            assert.strictEqual(out.status, 0, out.stderr);
            assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(dir, "addresses.json"), "utf8")), {
                auto_encrypt: { ip_san: ["10.0.0.5", "10.244.1.7"] },
            });
            // The data dir, 0755 as the kubelet makes a hostPath dir, is closed to others first.
            assert.strictEqual(fs.statSync(path.join(dir, "data")).mode & 0o777, 0o700);
            assert.deepStrictEqual(out.stdout.trim().split("\n"), [
                "agent",
                "-config-file=/c/client.json",
                "-config-file=/c/secret.json",
                `-config-file=${path.join(dir, "addresses.json")}`,
                "-node=node-a",
                "-advertise=10.0.0.5",
                "-bind=0.0.0.0",
            ]);
        });

        it("lists the address once with hostNetwork (pod IP = host IP)", () => {
            assert.strictEqual(run({ HOST_IP: "10.0.0.5", POD_IP: "10.0.0.5", NODE_NAME: "n" }).status, 0);
            assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(dir, "addresses.json"), "utf8")), {
                auto_encrypt: { ip_san: ["10.0.0.5"] },
            });
        });

        describe("a keyring persisted in the data dir by an earlier install", () => {
            const [key, old1, old2] = ["bmV3LWtleS0wMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NQ==", "b2xkMQ==", "b2xkMg=="];
            const keyring = () => path.join(dir, "data", "serf", "local.keyring");
            const env = { HOST_IP: "10.0.0.5", POD_IP: "10.0.0.5", NODE_NAME: "n" };
            beforeEach(() => {
                fs.writeFileSync(path.join(dir, "secret.json"), JSON.stringify({ encrypt: key, acl: { tokens: {} } }));
                fs.mkdirSync(path.dirname(keyring()), { recursive: true });
            });
            afterEach(() => fs.rmSync(path.join(dir, "data", "serf"), { recursive: true, force: true }));

            it("lacking this install's gossip key: gets it first (the primary), keeps the others, root-only, says so without the key", () => {
                fs.writeFileSync(keyring(), JSON.stringify([old1, old2]), { mode: 0o600 });
                const out = run(env);
                assert.strictEqual(out.status, 0, out.stderr);
                assert.deepStrictEqual(JSON.parse(fs.readFileSync(keyring(), "utf8")), [key, old1, old2]);
                assert.strictEqual(fs.statSync(keyring()).mode & 0o777, 0o600);
                assert.strictEqual(
                    out.stderr,
                    "the persisted gossip keyring lacked the configured key: it is now the primary key\n",
                );
                assert.ok(!out.stdout.includes(key) && !out.stderr.includes(key));
            });

            it("holding it (a restart, or mid-rotation): left as it is", () => {
                const ring = JSON.stringify([old1, key]);
                fs.writeFileSync(keyring(), ring, { mode: 0o600 });
                const out = run(env);
                assert.strictEqual(out.status, 0, out.stderr);
                assert.strictEqual(fs.readFileSync(keyring(), "utf8"), ring);
                assert.ok(!fs.existsSync(`${keyring()}.new`));
            });

            it("none yet (a first start): none written, the agent takes the key from its config", () => {
                const out = run(env);
                assert.strictEqual(out.status, 0, out.stderr);
                assert.ok(!fs.existsSync(keyring()) && !fs.existsSync(`${keyring()}.new`));
            });
        });

        it("refuses an address that is not an IP", () => {
            const out = run({ HOST_IP: '10.0.0.5"]}', POD_IP: "10.0.0.5", NODE_NAME: "n" });
            assert.notStrictEqual(out.status, 0);
            assert.match(out.stderr, /not an IP address/);
        });
    });

    it("shellQuote survives single quotes", () => {
        const quoted = shellQuote("it's");
        assert.strictEqual(execFileSync("sh", ["-c", `printf %s ${quoted}`], { encoding: "utf8" }), "it's");
    });
});
