// End-to-end: the program's own remote commands, replayed over real SSH into real systemd hosts
// (systemd-nspawn) that install a real Consul from a release mirror on the test bridge. Run with
// `npm run test:e2e` as root. The scenarios share one cluster and run in order; each prints its
// figures. Nothing is skipped: a missing prerequisite fails the suite with a message.

import * as assert from "assert";
import * as tls from "tls";
import { evaluateProgram } from "../mocks";
import {
    api,
    ApiOptions,
    Artifacts,
    ensureArtifacts,
    Hosts,
    leaderOf,
    LeaderWatch,
    log,
    Mirror,
    requirePrerequisites,
    sleep,
    waitFor,
} from "./infra";
import { CommandFailed, ReplayMocks, ReplayOptions } from "./replay";

const SERVERS = [1, 2, 3];
const CLIENTS = [4, 5];
/** Host 6 is not in the stack: it plays the rogue nodes of scenario 8. */
const HOST_COUNT = 6;

interface Deployed {
    readonly mocks: ReplayMocks;
    readonly failures: CommandFailed[];
    readonly outputs: Record<string, unknown>;
    readonly ms: number;
}

const figures: string[] = [];
function figure(line: string): void {
    figures.push(line);
    log(`FIGURE ${line}`);
}

describe("Consul on real hosts, deployed by the program's own commands over SSH", function () {
    this.timeout(30 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror | undefined;
    let state: ReplayMocks | undefined;
    let config: Record<string, string>;
    let ca = "";
    let token = "";
    let gossipKey = "";
    /** Our CA plus the Connect CA roots (clients' auto_encrypt certificates). */
    let agentCa = "";

    const addr = (i: number) => hosts.hosts[i - 1].address;
    const serverAddrs = () => SERVERS.map(addr);
    const asMgmt = (extra: Partial<ApiOptions> = {}): ApiOptions => ({ ca, token, ...extra });

    function stackConfig(overrides: Record<string, string> = {}, clients = CLIENTS): Record<string, string> {
        const entry = (i: number) => `${hosts.hosts[i - 1].name}=${addr(i)}`;
        return {
            topology: "vm",
            serverCount: String(SERVERS.length),
            serverHosts: JSON.stringify(SERVERS.map(entry)),
            clientHosts: JSON.stringify(clients.map(entry)),
            sshUser: "root",
            sshPrivateKeyPath: hosts.sshKeyPath,
            releaseMirrorUrl: mirror?.url ?? "",
            consulVersion: artifacts.consulVersion,
            aclDefaultPolicy: "deny",
            ...overrides,
        };
    }

    /** One `pulumi up`: the program under replay mocks chained to the previous state. */
    async function deploy(cfg: Record<string, string>, options: ReplayOptions = {}): Promise<Deployed> {
        const mocks = new ReplayMocks(state, options);
        const started = Date.now();
        const evaluated = await evaluateProgram(cfg, { stack: "e2e", mocks });
        const failures = await mocks.finish();
        state = mocks;
        const ms = Date.now() - started;
        const sessions = [...mocks.sessionsPerHost()].map(([h, n]) => `${h}=${n}`).join(" ") || "none";
        log(`deploy: ${mocks.runs.length} SSH sessions (${sessions}), ${failures.length} failures, ${ms} ms`);
        return { mocks, failures, outputs: evaluated.outputs, ms };
    }

    async function members(): Promise<{ Name: string; Status: number; Tags: Record<string, string> }[]> {
        const r = await api(addr(1), "/v1/agent/members", asMgmt());
        assert.strictEqual(r.status, 200, r.body);
        return JSON.parse(r.body) as { Name: string; Status: number; Tags: Record<string, string> }[];
    }

    async function mainPid(i: number): Promise<number> {
        const out = await hosts.run(i, "systemctl show -p MainPID --value consul.service");
        return parseInt(out.trim(), 10);
    }

    /** ExecMainStartTimestamp of consul.service on host i, as ms since the epoch (shared clock). */
    async function startedAt(i: number): Promise<number> {
        const out = await hosts.run(i, "systemctl show -p ExecMainStartTimestamp --value --timestamp=us+utc consul");
        const m = /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{6}) UTC/.exec(out);
        if (!m) throw new Error(`host ${i}: no start timestamp in '${out}'`);
        return Date.parse(`${m[1]}T${m[2]}.${m[3].slice(0, 3)}Z`);
    }

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        figure(
            `artifacts (consul v${artifacts.consulVersion} build + image, cached or not): ${artifacts.seconds.toFixed(1)} s`,
        );
        const t0 = Date.now();
        hosts = await Hosts.up(HOST_COUNT);
        figure(`${HOST_COUNT} hosts up: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        log(`release mirror at ${mirror.url}`);
        config = stackConfig();
    });

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        log("figures:\n  " + figures.join("\n  "));
    });

    it("1. fresh deploy: 3 servers + 2 clients, leader, 5 alive, TLS/gossip/ACL/KV/CLI all real", async () => {
        // The CA exists once the program has been evaluated (the first registrations mint it); the
        // leader watch starts then, while the servers are still being installed one by one.
        const mocks = new ReplayMocks(state, {});
        const started = Date.now();
        let leaderWatch: LeaderWatch | undefined;
        const evaluation = evaluateProgram(config, { stack: "e2e", mocks }).then((e) => {
            ca = String(e.outputs.caCertPem);
            leaderWatch = new LeaderWatch(serverAddrs(), ca, 100);
            return e;
        });
        const evaluated = await evaluation;
        const failures = await mocks.finish();
        state = mocks;
        await leaderWatch?.stop();
        const ms = Date.now() - started;
        assert.deepStrictEqual(
            failures.map((f) => f.message.slice(-2000)),
            [],
            "the fresh deploy failed",
        );
        token = String(evaluated.outputs.aclManagementToken);
        gossipKey = String(evaluated.outputs.gossipKey);
        figure(
            `1. fresh deploy: ${ms} ms, SSH sessions per host: ${[...mocks.sessionsPerHost()].map(([h, n]) => `${h}=${n}`).join(" ")}`,
        );

        // Leader and 5 alive members.
        const leader = await leaderOf(addr(1), ca);
        assert.match(leader, /:8300$/);
        const all = await members();
        assert.deepStrictEqual(
            all.map((m) => [m.Name, m.Status]).sort(),
            [...SERVERS, ...CLIENTS].map((i) => [hosts.hosts[i - 1].name, 1]).sort(),
        );

        // Time from the last server agent start to the first leader any server reported.
        const lastStart = Math.max(...(await Promise.all(SERVERS.map(startedAt))));
        assert.ok(leaderWatch?.firstLeaderAt, "the leader watch never saw a leader");
        figure(
            `1. time from the last server agent start to leader: ${(leaderWatch.firstLeaderAt - lastStart) / 1000} s (100 ms polling)`,
        );

        // Clients' HTTPS certificates come from the Connect CA (auto_encrypt): trust its roots too.
        const roots = await api(addr(1), "/v1/connect/ca/roots?pem=true", asMgmt());
        assert.strictEqual(roots.status, 200, roots.body);
        agentCa = ca + roots.body;

        // verify_server_hostname in force (servers and clients), as the agents report their config.
        for (const i of [1, 4]) {
            const self = await api(addr(i), "/v1/agent/self", asMgmt({ ca: agentCa }));
            assert.strictEqual(self.status, 200, self.body);
            const debug = (JSON.parse(self.body) as { DebugConfig: { TLS: { InternalRPC: Record<string, unknown> } } })
                .DebugConfig.TLS.InternalRPC;
            assert.strictEqual(debug.VerifyServerHostname, true, `host ${i}: ${JSON.stringify(debug)}`);
            assert.strictEqual(debug.VerifyOutgoing, true);
        }

        // The gossip keyring holds our key, on every member.
        const ring = await api(addr(1), "/v1/operator/keyring", asMgmt());
        assert.strictEqual(ring.status, 200, ring.body);
        for (const pool of JSON.parse(ring.body) as {
            WAN: boolean;
            Keys: Record<string, number>;
            NumNodes: number;
        }[]) {
            assert.deepStrictEqual(Object.keys(pool.Keys), [gossipKey], JSON.stringify(pool));
            if (!pool.WAN) assert.strictEqual(pool.Keys[gossipKey], 5);
        }

        // Clients serve HTTPS with an auto_encrypt certificate from the Connect CA (not ours).
        for (const i of CLIENTS) {
            const cert = await new Promise<tls.PeerCertificate>((resolve, reject) => {
                const socket = tls.connect({ host: addr(i), port: 8501, rejectUnauthorized: false }, () => {
                    resolve(socket.getPeerCertificate());
                    socket.end();
                });
                socket.on("error", reject);
                socket.setTimeout(3000, () => socket.destroy(new Error("timeout")));
            });
            assert.match(String(cert.subjectaltname), /URI:spiffe:\/\/[^ ,]+\/agent\/client\/dc\/dc1\/id\//);
            assert.doesNotMatch(String(cert.issuer.CN), /Consul Agent CA/);
            const local = await hosts.run(
                i,
                "bash -lc 'curl -sS -f --cacert $CONSUL_CACERT $CONSUL_HTTP_ADDR/v1/status/leader'",
            );
            assert.match(local, /:8300"$/);
        }

        // ACLs: anonymous requests are denied, the management token works.
        const anonymous = await api(addr(1), "/v1/kv/e2e/hello", { ca });
        assert.strictEqual(anonymous.status, 403, anonymous.body);
        const anonymousWrite = await api(addr(1), "/v1/kv/e2e/hello", { ca, method: "PUT", body: "x" });
        assert.strictEqual(anonymousWrite.status, 403, anonymousWrite.body);
        const self = await api(addr(1), "/v1/acl/token/self", asMgmt());
        assert.strictEqual(self.status, 200, self.body);

        // KV over HTTPS, verified with our CA (server certificates carry the host IPs).
        const put = await api(addr(2), "/v1/kv/e2e/hello", asMgmt({ method: "PUT", body: "world" }));
        assert.strictEqual(put.body.trim(), "true");
        const got = await api(addr(3), "/v1/kv/e2e/hello?raw", asMgmt());
        assert.strictEqual(got.body, "world");

        // Seed 002's profile.d environment: `consul members` in a login shell on a server.
        const cli = await hosts.run(1, "bash -lc 'consul members'");
        const alive = cli.split("\n").filter((l) => / alive /.test(l));
        assert.strictEqual(alive.length, 5, cli);
    });

    it("2. re-deploy with no change: 0 SSH sessions", async () => {
        const pids = await Promise.all([...SERVERS, ...CLIENTS].map(mainPid));
        const d = await deploy(config);
        figure(`2. no-change re-deploy: ${d.mocks.runs.length} SSH sessions, ${d.ms} ms`);
        assert.deepStrictEqual(d.failures, []);
        assert.deepStrictEqual(
            d.mocks.runs.map((r) => `${r.op} ${r.name}`),
            [],
        );
        assert.deepStrictEqual(await Promise.all([...SERVERS, ...CLIENTS].map(mainPid)), pids);
    });

    it("3. rolling change (logLevel): servers one at a time, leader never restarted as leader, gap <= 2 s", async () => {
        const leaderBefore = await leaderOf(addr(1), ca);
        const pids = await Promise.all(SERVERS.map(mainPid));
        config = stackConfig({ logLevel: "debug" });
        const watch = new LeaderWatch(serverAddrs(), ca, 100);
        const d = await deploy(config);
        await watch.stop();
        assert.deepStrictEqual(
            d.failures.map((f) => f.message.slice(-1500)),
            [],
        );
        const serverRuns = d.mocks.runs.filter((r) => r.name.includes("-server-"));
        assert.strictEqual(serverRuns.length, 3);
        // One at a time: each server's session starts after the previous one ended.
        for (let k = 1; k < serverRuns.length; k++) {
            assert.ok(serverRuns[k].startedAt >= serverRuns[k - 1].startedAt + serverRuns[k - 1].ms - 5);
        }
        const after = await Promise.all(SERVERS.map(mainPid));
        SERVERS.forEach((_, k) => assert.notStrictEqual(after[k], pids[k], `server ${k + 1} was not restarted`));
        const starts = await Promise.all(SERVERS.map(startedAt));
        const leaderHost = hosts.hosts.find((h) => leaderBefore.startsWith(h.address + ":"));
        const transferred = serverRuns.filter((r) => /transferring leadership/.test(r.stdout)).map((r) => r.host);
        figure(
            `3. rolling logLevel change: ${d.ms} ms, sessions ${[...d.mocks.sessionsPerHost()].map(([h, n]) => `${h}=${n}`).join(" ")}; ` +
                `restart order ${SERVERS.map((i, k) => [hosts.hosts[i - 1].name, starts[k]] as const)
                    .sort((a, b) => a[1] - b[1])
                    .map((x) => x[0])
                    .join(
                        " → ",
                    )}; leader before: ${leaderHost?.name}; leadership handed over by: ${transferred.join(", ") || "none"}`,
        );
        figure(
            `3. longest leaderless gap during the rolling change: ${watch.longestGapMs} ms (${watch.ticks} polls of 3 servers)`,
        );
        assert.ok(watch.longestGapMs <= 2000, `leaderless for ${watch.longestGapMs} ms`);
        // Every member is back and the new log level is in force.
        await waitFor(
            "5 alive members",
            async () => (await members()).filter((m) => m.Status === 1).length === 5,
            60_000,
        );
        const selfCfg = await api(addr(2), "/v1/agent/self", asMgmt());
        assert.match(selfCfg.body, /"LogLevel":"DEBUG"/);
    });

    // Keeps the helpers referenced while later scenarios are being written.
    void sleep;
});
