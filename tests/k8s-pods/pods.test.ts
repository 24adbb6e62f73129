// The dev stack's pod templates, run as a kubelet would run them, on systemd-nspawn hosts
// (scripts/e2e/hosts.sh): one host per server pod (consul-server-<i>) and one per node for the
// client DaemonSet, the real Consul binary at /bin/consul, volumes, env, command and security
// context from the rendered manifests (kubelet.ts). `npm run test:k8s-pods`; needs root.
/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- manifests are read as loose JSON */

import * as assert from "assert";
import * as childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";
import { kubernetesServerPodDnsName, SERVER_NAME } from "../../components/agent/names";
import { evaluateProgram, REPO_ROOT, stackFileConfig } from "../mocks";
import { Json } from "../kubernetes/helpers";
import { Manifest, manifestsOf } from "../kubernetes/render";
import { checkPrerequisites, Host, PodHosts } from "./hosts";
import {
    containerUnit,
    EXEC_HELPER,
    EXEC_HELPER_SOURCE,
    execProbeScript,
    PodContext,
    PODS_DIR,
    CLAIMS_DIR,
    podSetupScript,
} from "./kubelet";

const SERVERS = 3;
const NODES = 2;
const NAMESPACE = "consul";
/** The client agents' own namespace (Pod Security privileged; components/kubernetes/base.ts). */
const CLIENT_NAMESPACE = "consul-clients";
const CACHE_ROOT = path.join(
    process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? "/root", ".cache"),
    "consul-pulumi",
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function log(message: string): void {
    process.stdout.write(`      [k8s-pods] ${message}\n`);
}

/** The Consul binary build-consul.sh caches (the version the dev stack's image tag names). */
function consulBinary(version: string): string {
    const r = childProcess.spawnSync("bash", [path.join(REPO_ROOT, "scripts/e2e/build-consul.sh")], {
        encoding: "utf8",
        env: { ...process.env, CONSUL_VERSION: version },
        stdio: ["ignore", "pipe", "inherit"],
        timeout: 60 * 60_000,
    });
    const bin = r.stdout.trim().split("\n").pop() ?? "";
    if (r.status !== 0 || !fs.existsSync(bin))
        throw new Error(`scripts/e2e/build-consul.sh could not build Consul ${version}`);
    return bin;
}

/**
 * jq for the ACL Job's script (the consul image has it; the host image has not): Debian's own
 * packages, downloaded once with apt-get and installed on each host with dpkg (hosts are offline).
 */
function jqDebs(): string[] {
    const dir = path.join(CACHE_ROOT, "debs-jq");
    const debs = () => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".deb")) : []);
    if (debs().length < 3) {
        fs.mkdirSync(dir, { recursive: true });
        const script =
            "apt-get -o APT::Sandbox::User=root download jq libjq1 libonig5 || { apt-get update -qq && apt-get -o APT::Sandbox::User=root download jq libjq1 libonig5; }";
        const r = childProcess.spawnSync("sh", ["-c", script], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
        if (r.status !== 0)
            throw new Error(
                "could not download jq's Debian packages (apt-get -o APT::Sandbox::User=root download jq libjq1 libonig5)",
            );
    }
    return debs().map((f) => path.join(dir, f));
}

describe("pod templates run as a kubelet would (nspawn hosts, real Consul)", function () {
    this.timeout(20 * 60_000);
    const hosts = new PodHosts();
    let manifests: Manifest[];
    let sts: Json;
    let ds: Json;
    let job: Json;
    let servers: Host[];
    let nodes: Host[];
    const podName = (i: number) => `${SERVER_NAME}-${i}`;
    const nodeName = (j: number) => `k8s-node-${j + 1}`;
    const jobPod = "consul-acl-agent-token-x7k2p";

    const serverCtx = (i: number, workload: Json = sts): PodContext => ({
        placement: {
            podName: podName(i),
            namespace: NAMESPACE,
            nodeName: servers[i].name,
            hostIp: servers[i].address,
            podIp: servers[i].address,
        },
        workload,
        objects: manifests,
    });
    const clientCtx = (j: number): PodContext => ({
        placement: {
            podName: `consul-client-${nodeName(j)}`,
            namespace: CLIENT_NAMESPACE,
            nodeName: nodeName(j),
            hostIp: nodes[j].address,
            podIp: nodes[j].address,
        },
        workload: ds,
        objects: manifests,
    });
    const jobCtx = (): PodContext => ({
        placement: {
            podName: jobPod,
            namespace: NAMESPACE,
            nodeName: nodeName(0),
            hostIp: nodes[0].address,
            podIp: nodes[0].address,
        },
        workload: job,
        objects: manifests,
    });
    const main = (w: Json) => w.spec.template.spec.containers[0];

    function startPod(host: Host, ctx: PodContext): void {
        hosts.must(host.index, podSetupScript(ctx), `volumes of ${ctx.placement.podName}`);
        for (const init of ctx.workload.spec.template.spec.initContainers ?? []) {
            const out = hosts.must(
                host.index,
                containerUnit(ctx, init, "init").startScript,
                `init container ${init.name}`,
            );
            if (out.trim()) log(`${init.name}: ${out.trim()}`);
        }
        hosts.must(
            host.index,
            containerUnit(ctx, main(ctx.workload), "main").startScript,
            `container of ${ctx.placement.podName}`,
        );
    }

    function stopPod(host: Host, ctx: PodContext): void {
        const unit = containerUnit(ctx, main(ctx.workload), "main").unit;
        // Like the kubelet: SIGTERM, then the grace period (the unit's default stop timeout is longer).
        hosts.must(
            host.index,
            `systemctl stop ${unit}; rm -rf ${PODS_DIR}/${ctx.placement.podName}`,
            `delete pod ${ctx.placement.podName}`,
        );
    }

    function probe(host: Host, ctx: PodContext): number {
        const c = main(ctx.workload);
        return hosts.run(host.index, execProbeScript(ctx, c, c.readinessProbe), 30_000).code;
    }

    function unitActive(host: Host, ctx: PodContext): boolean {
        const unit = containerUnit(ctx, main(ctx.workload), "main").unit;
        return hosts.run(host.index, `systemctl is-active --quiet ${unit}`).code === 0;
    }

    /** An API call from inside the host, verified with the CA, with the management token. */
    function api(host: Host, url: string): Json {
        const out = hosts.must(
            host.index,
            `curl -sS --fail --max-time 5 --cacert /etc/kubelet-emu-ca.crt -H @/etc/kubelet-emu-management.header '${url}'`,
            `GET ${url} (via ${host.name})`,
        );
        return JSON.parse(out);
    }

    async function waitFor(what: string, seconds: number, check: () => boolean): Promise<number> {
        const start = Date.now();
        while (!check()) {
            if (Date.now() - start > seconds * 1000) throw new Error(`timed out after ${seconds}s waiting for ${what}`);
            await sleep(500);
        }
        return Date.now() - start;
    }

    function nodeId(host: Host, dataDir: string): string {
        return hosts.must(host.index, `cat ${dataDir}/node-id`, "read node-id").trim();
    }

    before(async function () {
        checkPrerequisites();
        const r = await evaluateProgram(stackFileConfig("dev").config, { stack: "dev" });
        manifests = manifestsOf(r);
        const one = (kind: string) => {
            const found = manifests.filter((m) => m.object.kind === kind);
            assert.strictEqual(found.length, 1, kind);
            return found[0].object as Json;
        };
        sts = one("StatefulSet");
        ds = one("DaemonSet");
        job = one("Job");
        assert.strictEqual(sts.spec.replicas, SERVERS);
        const image: string = main(sts).image;
        const version = image.split(":")[1];
        const consul = consulBinary(version);
        const debs = jqDebs();
        log(`consul ${version} (${consul}); booting ${SERVERS} server hosts and ${NODES} node hosts`);

        const all = await hosts.boot(SERVERS + NODES);
        servers = all.slice(0, SERVERS);
        nodes = all.slice(SERVERS);
        // Headless service DNS as /etc/hosts lines: each pod's stable name, and the service name
        // once per server (Go's resolver and glibc return every address listed for a name).
        const serviceNames = [`${SERVER_NAME}.${NAMESPACE}.svc`, `${SERVER_NAME}.${NAMESPACE}.svc.cluster.local`];
        const etcHosts = [
            "127.0.0.1 localhost",
            "::1 localhost ip6-localhost ip6-loopback",
            ...servers.map((h, i) => `${h.address} ${kubernetesServerPodDnsName(NAMESPACE, i)} ${podName(i)}`),
            ...servers.map((h) => `${h.address} ${serviceNames.join(" ")}`),
            ...nodes.map((h, j) => `${h.address} ${nodeName(j)}`),
            "",
        ].join("\n");
        const aclSecret = manifests.find(
            (m) => m.object.kind === "Secret" && (m.object.metadata as Json).name === "consul-acl-init",
        )?.object as Json;
        const ca = (
            manifests.find((m) => m.object.kind === "ConfigMap" && (m.object.metadata as Json).name === "consul-ca")
                ?.object as Json
        ).data["ca.crt"];
        for (const h of all) {
            const root = hosts.root(h.index);
            // The image's binary path: /bin/consul (here /bin is /usr/bin).
            fs.copyFileSync(consul, path.join(root, "usr/bin/consul"));
            fs.chmodSync(path.join(root, "usr/bin/consul"), 0o755);
            fs.mkdirSync(path.join(root, path.dirname(EXEC_HELPER)), { recursive: true });
            fs.writeFileSync(path.join(root, EXEC_HELPER), EXEC_HELPER_SOURCE, { mode: 0o755 });
            fs.mkdirSync(path.join(root, "var/tmp/debs"), { recursive: true });
            for (const deb of debs) fs.copyFileSync(deb, path.join(root, "var/tmp/debs", path.basename(deb)));
            fs.writeFileSync(path.join(root, "etc/hosts"), etcHosts);
            fs.writeFileSync(path.join(root, "etc/kubelet-emu-ca.crt"), ca);
            // The test's own API calls (not the pods'): the management token, root-only.
            fs.writeFileSync(
                path.join(root, "etc/kubelet-emu-management.header"),
                aclSecret.stringData["management-token.header"],
                { mode: 0o600 },
            );
            const name = h.index <= SERVERS ? podName(h.index - 1) : nodeName(h.index - SERVERS - 1);
            hosts.must(
                h.index,
                [
                    "set -e",
                    "dpkg -i /var/tmp/debs/*.deb >/dev/null",
                    "rm -rf /var/tmp/debs",
                    `hostname ${name}`,
                    `echo ${name} >/etc/hostname`,
                    // The image's group (Alpine: addgroup consul = gid 1000); systemd 252 needs it
                    // to exist. uid 100 is the image's consul user; on these hosts it is messagebus.
                    "groupadd -g 1000 consul",
                ].join("\n"),
                "host setup",
            );
        }
    });

    after(async function () {
        if (this.currentTest?.state === "failed" || (hosts.hosts.length > 0 && process.exitCode)) {
            for (const h of hosts.hosts) {
                const r = hosts.run(h.index, "journalctl --no-pager -n 25 -u 'pod-*' 2>&1 | tail -n 25", 20_000);
                process.stderr.write(`--- ${h.name} (${h.address}) pod journal\n${r.stdout}\n`);
            }
        }
        await hosts.down();
    });

    let leaderMs = 0;

    it("server pods without quorum: running, and the readiness probe (as written) fails", async () => {
        for (let i = 0; i < SERVERS - 1; i++) startPod(servers[i], serverCtx(i));
        await sleep(6000);
        for (let i = 0; i < SERVERS - 1; i++) {
            assert.ok(unitActive(servers[i], serverCtx(i)), `${podName(i)} is not running`);
            assert.notStrictEqual(probe(servers[i], serverCtx(i)), 0, `${podName(i)} is ready without a leader`);
            // ...because there is no leader yet, not because nothing answers.
            const answer = hosts.must(
                servers[i].index,
                "curl -sS --cacert /etc/kubelet-emu-ca.crt https://127.0.0.1:8501/v1/status/leader",
                "leader",
            );
            assert.strictEqual(answer.trim(), '""');
        }
    });

    it("with the last server pod: a leader and every server ready (time to leader)", async () => {
        startPod(servers[SERVERS - 1], serverCtx(SERVERS - 1));
        leaderMs = await waitFor("a leader seen by every server pod's readiness probe", 120, () =>
            servers.every((h, i) => probe(h, serverCtx(i)) === 0),
        );
        log(`time to leader: ${(leaderMs / 1000).toFixed(1)}s after the last server pod started`);
        // readOnlyRootFilesystem holds inside the container's mount namespace (even for root)...
        const unit = containerUnit(serverCtx(0), main(sts), "main").unit;
        const rofs = hosts.run(
            servers[0].index,
            `nsenter -t "$(systemctl show -p MainPID --value ${unit})" -m touch /etc/x 2>&1`,
        );
        assert.match(rofs.stdout, /Read-only file system/);
        // ...and the agent runs as the image's user, with the claim group-owned by fsGroup.
        const ps = hosts.must(
            servers[0].index,
            `ps -o uid=,gid= -p "$(systemctl show -p MainPID --value ${unit})"; stat -c '%g %a' ${CLAIMS_DIR}/data-${podName(0)}`,
            "ps",
        );
        assert.deepStrictEqual(ps.trim().split(/\s+/), ["100", "1000", "1000", "2775"]);
        const peers = api(nodes[0], `https://${SERVER_NAME}.${NAMESPACE}.svc:8501/v1/status/peers`) as string[];
        assert.strictEqual(peers.length, SERVERS);
    });

    it("TLS: the server names pods use verify against the CA; an address outside the certificate does not", () => {
        const curl = (url: string, extra = "") =>
            hosts.run(
                nodes[0].index,
                `curl -sS --max-time 5 --cacert /etc/kubelet-emu-ca.crt ${extra} -o /dev/null '${url}'`,
            );
        for (let i = 0; i < SERVERS; i++) {
            const r = curl(`https://${kubernetesServerPodDnsName(NAMESPACE, i)}:8501/v1/status/leader`);
            assert.strictEqual(r.code, 0, r.stderr);
        }
        for (const name of [`${SERVER_NAME}.${NAMESPACE}.svc`, `${SERVER_NAME}.${NAMESPACE}.svc.cluster.local`]) {
            const r = curl(`https://${name}:8501/v1/status/leader`);
            assert.strictEqual(r.code, 0, `${name}: ${r.stderr}`);
        }
        const byIp = curl(`https://${servers[0].address}:8501/v1/status/leader`);
        assert.strictEqual(byIp.code, 60, `a server certificate must not verify for its pod IP: ${byIp.stderr}`);
    });

    it("the ACL Job's script, as written, creates the agent policy and token, and is idempotent", () => {
        const ctx = jobCtx();
        hosts.must(nodes[0].index, podSetupScript(ctx), "Job volumes");
        const c = main(job);
        const first = hosts.must(nodes[0].index, containerUnit(ctx, c, "init").startScript, "ACL Job", 300_000);
        assert.match(first, /created the agent token/);
        const second = hosts.must(
            nodes[0].index,
            containerUnit(ctx, c, "init").startScript,
            "ACL Job (again)",
            300_000,
        );
        assert.match(second, /the agent token exists already/);
        log(`ACL Job: ${first.trim().split("\n").join(" | ")}`);
    });

    it("client pods (hostNetwork) join with auto_encrypt: node and self-service in the catalog, ready", async () => {
        for (let j = 0; j < NODES; j++) startPod(nodes[j], clientCtx(j));
        await waitFor("both client nodes in the catalog", 90, () => {
            const names = (
                api(nodes[0], `https://${SERVER_NAME}.${NAMESPACE}.svc:8501/v1/catalog/nodes`) as Json[]
            ).map((n) => n.Node);
            return [...Array(NODES).keys()].every((j) => names.includes(nodeName(j)));
        });
        await waitFor("client readiness", 60, () => nodes.every((h, j) => probe(h, clientCtx(j)) === 0));
        // The init container (CAP_CHOWN only) handed the hostPath data dir to the consul user, and
        // the agent's start script, its owner now, closed it to others.
        const dataDir: string = ds.spec.template.spec.volumes.find((v: Json) => v.name === "data").hostPath.path;
        assert.strictEqual(hosts.must(nodes[0].index, `stat -c '%u:%g %a' ${dataDir}`, "stat").trim(), "100:1000 700");
        for (let j = 0; j < NODES; j++) {
            const self = api(nodes[j], `https://127.0.0.1:8501/v1/agent/self`);
            assert.strictEqual(self.DebugConfig.AutoEncryptTLS, true, "auto_encrypt.tls is off");
            assert.strictEqual(self.Config.Server, false);
            assert.strictEqual(self.Config.NodeName, nodeName(j));
            // Apps on the node verify the agent as client.<dc>.<domain> at $(HOST_IP):8501.
            const app = hosts.run(
                nodes[j].index,
                `curl -sS --fail --max-time 5 --cacert /etc/kubelet-emu-ca.crt --resolve client.dc1.consul:8501:${nodes[j].address} https://client.dc1.consul:8501/v1/status/leader`,
            );
            assert.strictEqual(app.code, 0, app.stderr);
        }
        // Each agent registers its own service once it has synced with the servers (anti-entropy),
        // which can come after its readiness: CI saw one missing right after both were ready.
        const registered = () =>
            (api(nodes[0], `https://${SERVER_NAME}.${NAMESPACE}.svc:8501/v1/catalog/service/consul-client`) as Json[])
                .map((s) => s.Node as string)
                .sort();
        await waitFor("both clients' own services in the catalog", 60, () => registered().length === NODES);
        assert.deepStrictEqual(registered(), [...Array(NODES).keys()].map(nodeName).sort());
    });

    it("a server pod deleted and recreated with its claim keeps its node ID", async () => {
        const claim = `${CLAIMS_DIR}/data-${podName(0)}`;
        const before = nodeId(servers[0], claim);
        stopPod(servers[0], serverCtx(0));
        startPod(servers[0], serverCtx(0));
        await waitFor(`${podName(0)} ready again`, 90, () => probe(servers[0], serverCtx(0)) === 0);
        assert.strictEqual(nodeId(servers[0], claim), before);
        const node = api(nodes[0], `https://${SERVER_NAME}.${NAMESPACE}.svc:8501/v1/catalog/node/${podName(0)}`);
        assert.strictEqual(node.Node.ID, before);
        const peers = api(nodes[0], `https://${SERVER_NAME}.${NAMESPACE}.svc:8501/v1/status/peers`) as string[];
        assert.strictEqual(peers.length, SERVERS);
    });

    it("a client pod restarted on the same node keeps its node ID (hostPath data dir)", async () => {
        const dataDir: string = ds.spec.template.spec.volumes.find((v: Json) => v.name === "data").hostPath.path;
        const before = nodeId(nodes[0], dataDir);
        stopPod(nodes[0], clientCtx(0));
        startPod(nodes[0], clientCtx(0));
        await waitFor("the restarted client ready", 90, () => probe(nodes[0], clientCtx(0)) === 0);
        assert.strictEqual(nodeId(nodes[0], dataDir), before);
        const node = api(nodes[0], `https://${SERVER_NAME}.${NAMESPACE}.svc:8501/v1/catalog/node/${nodeName(0)}`);
        assert.strictEqual(node.Node.ID, before);
    });

    it("a broken pod spec fails: the client's CA ConfigMap mounted at the wrong path", async () => {
        const host = nodes[1];
        stopPod(host, clientCtx(1));
        const broken = structuredClone(ds);
        main(broken).volumeMounts.find((m: Json) => m.name === "ca").mountPath = "/consul/ca-certs";
        const ctx: PodContext = { ...clientCtx(1), workload: broken };
        startPod(host, ctx);
        await waitFor("the broken pod's container to exit", 30, () => !unitActive(host, ctx));
        const unit = containerUnit(ctx, main(broken), "main").unit;
        const journal = hosts.run(host.index, `journalctl --no-pager -u ${unit}`).stdout;
        assert.match(journal, /\/consul\/ca\/ca\.crt: no such file or directory/);
        assert.match(journal, /status=1\/FAILURE/);
        assert.notStrictEqual(probe(host, ctx), 0);
    });
});
