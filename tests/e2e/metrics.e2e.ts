// Metrics as a platform team collects them, on real hosts (3 servers, 2 clients, deployed by the
// program's own commands under replay, ./replay.ts): a real Prometheus (2.53 from its Go module,
// scripts/e2e/build-prometheus.sh: Debian's 2.42 has no Consul discovery) runs on client host 5
// with the stack's prometheusScrapeConfig output as written, the metricsToken output in the file
// it names, and the CA bundle on that host. Through Prometheus's HTTP API: Consul discovery finds
// every member, each target is up (scraped over HTTPS, the certificate verified), every server
// reports its Raft series, and every dashboard query evaluates. The token reads metrics and no KV.
// A re-run with no change opens no SSH session.

import * as assert from "assert";
import * as http from "http";
import { vmStackConfig } from "./checks";
import { api, Artifacts, ensureArtifacts, Figures, Hosts, log, Mirror, requirePrerequisites, sleep } from "./infra";
import { runScript } from "./hosts";
import { assertNoFailures, Deployed, deployReplay, ReplayMocks } from "./replay";
import { renderYaml, PROMETHEUS_TOKEN_FILE, SCRAPE_JOBS } from "../../components/metrics";
import { dashboardQueries } from "../metrics/dashboard";

const SERVERS = [1, 2, 3];
const CLIENTS = [4, 5];
/** The client host Prometheus runs on. */
const PROMETHEUS_HOST = 5;
const PROMETHEUS_PORT = 9090;

const figures = new Figures();

interface Sample {
    readonly metric: Record<string, string>;
    readonly value: [number, string];
}
interface Target {
    readonly labels: Record<string, string>;
    readonly scrapeUrl: string;
    readonly health: string;
    readonly lastError: string;
}

describe("Metrics on real hosts: Prometheus finds every agent through Consul and scrapes it with the metrics token", function () {
    this.timeout(30 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror | undefined;
    let state: ReplayMocks | undefined;
    let deployed: Deployed;
    let prometheusStarted = 0;

    const addr = (i: number) => hosts.hosts[i - 1].address;
    const nodeName = (i: number) => hosts.hosts[i - 1].name;
    const stackConfig = () =>
        vmStackConfig(
            hosts,
            { servers: SERVERS, clients: CLIENTS },
            { mirrorUrl: mirror?.url ?? "", consulVersion: artifacts.consulVersion },
        );

    /** GET on Prometheus's HTTP API; its `data` (asserting status success). */
    function prometheus<T>(pathAndQuery: string): Promise<T> {
        return new Promise((resolve, reject) => {
            const req = http.get(
                { host: addr(PROMETHEUS_HOST), port: PROMETHEUS_PORT, path: pathAndQuery, timeout: 10_000 },
                (res) => {
                    let body = "";
                    res.on("data", (d: Buffer) => (body += d.toString()));
                    res.on("end", () => {
                        try {
                            const parsed = JSON.parse(body) as { status: string; data: T; error?: string };
                            if (parsed.status !== "success") throw new Error(`${pathAndQuery}: ${body}`);
                            resolve(parsed.data);
                        } catch (err) {
                            reject(err instanceof Error ? err : new Error(String(err)));
                        }
                    });
                },
            );
            req.on("timeout", () => req.destroy(new Error(`${pathAndQuery}: no answer`)));
            req.on("error", reject);
        });
    }
    const query = async (expr: string) =>
        (await prometheus<{ result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result;

    before(async () => {
        requirePrerequisites();
        const [built, prometheusBin] = await Promise.all([
            ensureArtifacts(),
            runScript("build-prometheus.sh", [], 45 * 60_000),
        ]);
        artifacts = built;
        hosts = await Hosts.up(SERVERS.length + CLIENTS.length);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        // Prometheus's binary onto its host, as a package would put it.
        await hosts.run(PROMETHEUS_HOST, "mkdir -p /usr/local/bin");
        const { copyFileSync, chmodSync } = await import("fs");
        copyFileSync(prometheusBin, `${hosts.root(PROMETHEUS_HOST)}/usr/local/bin/prometheus`);
        chmodSync(`${hosts.root(PROMETHEUS_HOST)}/usr/local/bin/prometheus`, 0o755);
    });

    after(async () => {
        mirror?.stop();
        if (hosts) await hosts.down();
        figures.print();
    });

    it("a. deploy: the metrics policy and token are made after the agents' ACL step, on server 1", async () => {
        deployed = await deployReplay(state, stackConfig());
        state = deployed.mocks;
        assertNoFailures(deployed.failures);
        const acl = deployed.mocks.runs.filter((r) => r.name.endsWith("-metrics-acl"));
        assert.strictEqual(acl.length, 1, "one metrics ACL step");
        assert.strictEqual(acl[0].host, addr(1));
        assert.match(acl[0].stdout, /acl: policy consul-metrics created\n.*acl: metrics token created/);
        figures.add(`metrics deploy: 3 servers + 2 clients in ${(deployed.ms / 1000).toFixed(1)} s`);
    });

    it("b. Prometheus runs the prometheusScrapeConfig output as written, the token in the file it names", async () => {
        const scrape = String(deployed.outputs.prometheusScrapeConfig);
        const token = String(deployed.outputs.metricsToken);
        assert.match(token, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.ok(!scrape.includes(token), "the scrape config holds the token");
        assert.ok(scrape.includes(`credentials_file: "${PROMETHEUS_TOKEN_FILE}"`));
        // prometheus.yml: a global section of the test's, then the output unchanged.
        const config = renderYaml({ global: { scrape_interval: "5s", evaluation_interval: "5s" } }) + scrape;
        const i = PROMETHEUS_HOST;
        await hosts.run(i, "id prometheus >/dev/null 2>&1 || useradd --system --no-create-home prometheus");
        await hosts.run(i, "mkdir -p /etc/prometheus && cat > /etc/prometheus/prometheus.yml", { stdin: config });
        // The token on stdin, into a file only prometheus (and root) reads.
        await hosts.run(
            i,
            `umask 077 && cat > ${PROMETHEUS_TOKEN_FILE} && chgrp prometheus ${PROMETHEUS_TOKEN_FILE} && chmod 0640 ${PROMETHEUS_TOKEN_FILE}`,
            { stdin: token + "\n" },
        );
        await hosts.run(
            i,
            "systemd-run --unit=prometheus-e2e -p User=prometheus -p StateDirectory=prometheus-e2e " +
                "/usr/local/bin/prometheus --config.file=/etc/prometheus/prometheus.yml " +
                `--storage.tsdb.path=/var/lib/prometheus-e2e --web.listen-address=0.0.0.0:${PROMETHEUS_PORT}`,
        );
        prometheusStarted = Date.now();
        let ready = false;
        for (let tries = 0; tries < 120 && !ready; tries++) {
            ready = await prometheus<unknown>("/api/v1/status/buildinfo").then(
                () => true,
                () => false,
            );
            if (!ready) await sleep(500);
        }
        const journal = await hosts.run(i, "journalctl -u prometheus-e2e -o cat --no-pager | tail -n 30");
        assert.ok(ready, `Prometheus did not answer:\n${journal}`);
        assert.match(journal, /Completed loading of configuration file/);
        // The prometheus user reads the CA bundle the scrape config names (the directories are searchable).
        await hosts.run(i, "runuser -u prometheus -- cat /etc/consul.d/tls/agent-ca.pem >/dev/null");
        // ... and nothing secret: the directories are not listable, the agent token and gossip key
        // files are the consul group's, the client certificate material root's.
        for (const denied of [
            "ls /etc/consul.d",
            "ls /etc/consul.d/tls",
            "cat /etc/consul.d/secrets.json",
            "cat /etc/consul.d/gossip.json",
            "cat /etc/consul.d/consul.json",
        ]) {
            const r = await hosts.exec(i, `runuser -u prometheus -- ${denied}`);
            assert.notStrictEqual(r.code, 0, `prometheus could: ${denied}`);
            assert.match(r.stderr, /Permission denied/, denied);
        }
        assert.doesNotMatch(journal, /level=error/, journal);
    });

    it("c. Consul discovery finds every member, and every target is up over verified HTTPS", async () => {
        const expected = [
            ...SERVERS.map((s) => `${SCRAPE_JOBS.server} ${nodeName(s)} https://${addr(s)}:8501`),
            ...CLIENTS.map((c) => `${SCRAPE_JOBS.client} ${nodeName(c)} https://${addr(c)}:8501`),
        ].sort();
        let targets: Target[] = [];
        const deadline = Date.now() + 3 * 60_000;
        for (;;) {
            targets = (await prometheus<{ activeTargets: Target[] }>("/api/v1/targets?state=active")).activeTargets;
            const upAll = targets.length === expected.length && targets.every((t) => t.health === "up");
            if (upAll || Date.now() > deadline) break;
            await sleep(1000);
        }
        const seen = targets
            .map((t) => `${t.labels.job} ${t.labels.instance} ${t.scrapeUrl.replace(/\/v1\/agent\/metrics.*$/, "")}`)
            .sort();
        assert.deepStrictEqual(seen, expected, "the targets Consul discovery found");
        for (const t of targets) {
            assert.strictEqual(t.health, "up", `${t.labels.instance}: ${t.lastError}`);
            assert.match(t.scrapeUrl, /\/v1\/agent\/metrics\?format=prometheus$/);
        }
        figures.add(
            `metrics: all 5 targets up ${((Date.now() - prometheusStarted) / 1000).toFixed(1)} s after Prometheus started`,
        );
        // up == 1 for each member, by name.
        const up = await query('up{job=~"consul-servers|consul-clients"}');
        assert.deepStrictEqual(
            up.map((s) => `${s.metric.instance}=${s.value[1]}`).sort(),
            [...SERVERS, ...CLIENTS].map((h) => `${nodeName(h)}=1`).sort(),
        );
    });

    it("d. every server reports its Raft series; exactly one leads, and its last contact with followers is measured", async () => {
        const servers = SERVERS.map(nodeName).sort();
        let lastContact: Sample[] = [];
        let leaders: Sample[] = [];
        const deadline = Date.now() + 2 * 60_000;
        for (;;) {
            lastContact = await query(`consul_raft_leader_lastContact_count{job="${SCRAPE_JOBS.server}"}`);
            leaders = await query(`consul_server_isLeader{job="${SCRAPE_JOBS.server}"}`);
            const leaderCount = lastContact.find((s) => Number(s.value[1]) > 0);
            if ((lastContact.length === 3 && leaders.length === 3 && leaderCount) || Date.now() > deadline) break;
            await sleep(2000);
        }
        assert.deepStrictEqual(
            lastContact.map((s) => s.metric.instance).sort(),
            servers,
            "lastContact from each server",
        );
        assert.deepStrictEqual(leaders.map((s) => s.metric.instance).sort(), servers, "isLeader from each server");
        const leading = leaders.filter((s) => s.value[1] === "1").map((s) => s.metric.instance);
        assert.strictEqual(leading.length, 1, `leaders: ${JSON.stringify(leaders)}`);
        // Raft's leader measures its contact with each follower: only the leader's count grows.
        const counted = lastContact.filter((s) => Number(s.value[1]) > 0).map((s) => s.metric.instance);
        assert.deepStrictEqual(counted, leading, "only the leader measures lastContact");
        const p50 = await query(`consul_raft_leader_lastContact{quantile="0.5",instance="${leading[0]}"}`);
        assert.ok(Number.isFinite(Number(p50[0]?.value[1])), `the leader's lastContact p50: ${JSON.stringify(p50)}`);
        figures.add(`metrics: leader ${leading[0]} lastContact p50 ${Number(p50[0].value[1]).toFixed(2)} ms`);
        // The clients are scraped too, and are no servers.
        const clientSeries = await query(`consul_runtime_num_goroutines{job="${SCRAPE_JOBS.client}"}`);
        assert.deepStrictEqual(clientSeries.map((s) => s.metric.instance).sort(), CLIENTS.map(nodeName).sort());
    });

    it("e. every dashboard query evaluates on this Prometheus and returns series", async () => {
        // Rates need two scrapes inside their window: wait for a third scrape round.
        await sleep(Math.max(0, prometheusStarted + 20_000 - Date.now()));
        const empty: string[] = [];
        for (const expr of dashboardQueries()) {
            const result = await query(expr); // rejects on a parse or evaluation error
            if (result.length === 0) empty.push(expr);
        }
        assert.deepStrictEqual(empty, [], "dashboard queries with no series");
    });

    it("f. the metrics token is minimal: metrics yes, KV read and write 403, ACL and operator reads 403", async () => {
        const token = String(deployed.outputs.metricsToken);
        const ca = String(deployed.outputs.caCertPem);
        const metrics = await api(addr(1), "/v1/agent/metrics?format=prometheus", { ca, token });
        assert.strictEqual(metrics.status, 200);
        assert.match(metrics.body, /^consul_raft_leader_lastContact_count /m);
        const anonymous = await api(addr(1), "/v1/agent/metrics?format=prometheus", { ca });
        assert.strictEqual(anonymous.status, 403, "metrics without a token");
        // The management token writes a key, so the KV read is refused for lack of rights, not absence.
        const mgmt = String(deployed.outputs.aclManagementToken);
        const put = await api(addr(1), "/v1/kv/metrics-e2e/probe", { ca, token: mgmt, method: "PUT", body: "x" });
        assert.strictEqual(put.status, 200);
        const refused: [string, string, string | undefined][] = [
            ["GET", "/v1/kv/metrics-e2e/probe", undefined],
            ["PUT", "/v1/kv/metrics-e2e/probe", "y"],
            ["PUT", "/v1/kv/metrics-e2e/new", "y"],
            ["GET", "/v1/acl/tokens", undefined],
            ["GET", "/v1/operator/raft/configuration", undefined],
        ];
        for (const [method, path, body] of refused) {
            const r = await api(addr(1), path, { ca, token, method, body });
            assert.strictEqual(r.status, 403, `${method} ${path}: ${r.status} ${r.body}`);
            assert.match(r.body, /Permission denied/, `${method} ${path}`);
        }
        const still = await api(addr(1), "/v1/kv/metrics-e2e/probe?raw", { ca, token: mgmt });
        assert.strictEqual(still.body, "x", "the refused write changed the key");
        // Discovery saw only the two services it may read.
        const services = await api(addr(CLIENTS[0]), "/v1/catalog/services", { ca: await agentCa(), token });
        assert.deepStrictEqual(Object.keys(JSON.parse(services.body) as object).sort(), ["consul", "consul-client"]);
    });

    it("g. a second deploy with no change opens no SSH session", async () => {
        const again = await deployReplay(state, stackConfig());
        assertNoFailures(again.failures);
        assert.deepStrictEqual(
            again.mocks.runs.map((r) => `${r.op}@${r.host}`),
            [],
        );
        log("no-change deploy ran nothing");
    });

    /** The clients' CA bundle (our CA and the Connect CA roots that sign their HTTPS certificates). */
    async function agentCa(): Promise<string> {
        return hosts.run(CLIENTS[0], "cat /etc/consul.d/tls/agent-ca.pem");
    }
});
