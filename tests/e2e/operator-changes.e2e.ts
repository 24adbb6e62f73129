// The changes operators make, on real hosts, each deployed by the program's own commands (replayed
// over SSH, ./replay.ts): a rolling upgrade, a failed upgrade, an SSH drop in the middle of a
// rollout, the same machine reached differently, scaling servers 3→5→3, a dead server removed,
// a host rebooted. Around each one (./kv-checks.ts): 1,000 keys written before and read back from
// every server after, one leader, no leaderless gap over 2 s, and a KV history checked for
// linearizability. The scenarios share one cluster and run in order.

import * as assert from "assert";
import * as fs from "fs";
import {
    agentNodeId,
    assertHandOvers,
    electionsStartedByTimeout,
    mainPid,
    membersAt,
    raftServers,
    vmStackConfig,
} from "./checks";
import {
    api,
    Artifacts,
    ensureArtifacts,
    ensureConsulRelease,
    Figures,
    Hosts,
    leaderOf,
    log,
    Mirror,
    requirePrerequisites,
    waitFor,
} from "./infra";
import {
    abandonLeftoverWatches,
    assertNoKeyLost,
    assertOneLeader,
    KvAccess,
    ScenarioWatch,
    writeBulk,
} from "./kv-checks";
import { brokenRelease, BROKEN_VERSION, PREVIOUS_VERSION, TAMPERED_VERSION, tamperedReleases } from "./releases";
import { assertNoFailures, Deployed, deployReplay, ReplayMocks } from "./replay";

const HOST_COUNT = 6;
const CLIENT = 6;
const OLD_VERSION = PREVIOUS_VERSION;

const figures = new Figures();
const figure = (line: string) => figures.add(line);

describe("Operator changes on real hosts: upgrade, failed upgrade, SSH drop, same machine, scale, dead server, reboot", function () {
    this.timeout(30 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror | undefined;
    let state: ReplayMocks | undefined;
    let access: KvAccess = { ca: "", token: "" };
    let servers = [1, 2, 3];
    let overrides: Record<string, string> = {};
    const prefixes: string[] = [];
    const etcHostsMarker = `# consul-pulumi-e2e ${process.pid}`;

    const addr = (i: number) => hosts.hosts[i - 1].address;
    const name = (i: number) => hosts.hosts[i - 1].name;
    /** How the stack lists each host (`<name>=<address>[:port]`); scenario f changes host 3's. */
    const entries: Record<number, string> = {};
    const entry = (i: number) => entries[i] ?? `${name(i)}=${addr(i)}`;
    /** Where the tests reach a host's API: its certificate names its IP, or its hostname once listed so. */
    const apiAt: Record<number, string> = {};
    const at = (i: number) => apiAt[i] ?? addr(i);
    const liveServerAddrs = () => servers.map(at);

    function stackConfig(version: string): Record<string, string> {
        const release = { mirrorUrl: mirror?.url ?? "", consulVersion: version };
        return vmStackConfig(hosts, { servers, clients: [CLIENT] }, release, {
            serverHosts: JSON.stringify(servers.map(entry)),
            serverCount: String(servers.length),
            ...overrides,
        });
    }

    async function deploy(cfg: Record<string, string>): Promise<Deployed> {
        const d = await deployReplay(state, cfg);
        state = d.mocks;
        const runs = d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ") || "none";
        log(`deploy: ${runs}; ${d.failures.length} failure(s)`);
        return d;
    }

    /** Before a scenario: 1,000 more keys. After it: every key on every server, one leader. */
    async function writeKeys(letter: string): Promise<void> {
        const prefix = `e2e/${letter}`;
        await writeBulk(at(servers[0]), access, prefix);
        prefixes.push(prefix);
    }
    async function checkKeys(): Promise<number> {
        await assertOneLeader(liveServerAddrs(), access.ca);
        return await assertNoKeyLost(liveServerAddrs(), access, prefixes);
    }

    const nodeId = (i: number) => agentNodeId(at(i), access, 60_000);
    const members = () => membersAt(at(servers[0]), access);
    const raftPeers = () => raftServers(at(servers[0]), access);
    async function autopilotHealthy(): Promise<boolean> {
        const r = await api(at(servers[0]), "/v1/operator/autopilot/health", access);
        return r.status === 200 && (JSON.parse(r.body) as { Healthy: boolean }).Healthy;
    }

    function report(
        letter: string,
        what: string,
        w: { gapMs: number; check: { ops: number; linearizable: boolean } },
        lost: number,
    ) {
        figure(
            `${letter}. ${what}: ops checked ${w.check.ops}, linearizable ${w.check.linearizable ? "yes" : "no"}, keys lost ${lost}, longest leaderless gap ${w.gapMs} ms`,
        );
    }

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        const oldRelease = await ensureConsulRelease(OLD_VERSION);
        hosts = await Hosts.up(HOST_COUNT);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        mirror.addRelease(OLD_VERSION, oldRelease);
        mirror.addRelease(BROKEN_VERSION, brokenRelease());
        const d = await deploy(stackConfig(OLD_VERSION));
        assertNoFailures(d.failures);
        access = { ca: String(d.outputs.caCertPem), token: String(d.outputs.aclManagementToken) };
        await assertOneLeader(liveServerAddrs(), access.ca);
    });

    afterEach(abandonLeftoverWatches);

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        const etc = fs.readFileSync("/etc/hosts", "utf8");
        if (etc.includes(etcHostsMarker)) {
            fs.writeFileSync(
                "/etc/hosts",
                etc
                    .split("\n")
                    .filter((l) => !l.includes(etcHostsMarker))
                    .join("\n"),
            );
        }
        figures.print();
    });

    it("c. rolling upgrade 1.16.2 → 1.16.3: one server at a time, leadership handed only to upgraded servers, all on 1.16.3", async () => {
        await writeKeys("c");
        const leaderBefore = await leaderOf(at(1), access.ca);
        const rolloutStart = Date.now();
        const watch = await ScenarioWatch.start(liveServerAddrs(), liveServerAddrs(), access, "c-upgrade");
        const d = await deploy(stackConfig(artifacts.consulVersion));
        const w = await watch.stop();
        assertNoFailures(d.failures);
        const elections = await electionsStartedByTimeout(hosts, servers, rolloutStart);
        const serverRuns = d.mocks.runs.filter((r) => r.name.includes("-server-"));
        assertHandOvers(
            serverRuns.map((r) => r.stdout),
            serverRuns.map((r) => r.host),
            leaderBefore.startsWith(addr(servers[0]) + ":"),
            elections.length,
        );
        await waitFor(
            `every member on ${artifacts.consulVersion}`,
            async () =>
                (await members()).every((m) => m.Status === 1 && m.Tags.build?.startsWith(artifacts.consulVersion)),
            60_000,
        );
        // Once healthy, the previous binary and files (old keys and tokens among them) are gone, and the
        // management token is in no file the consul user can read.
        for (const i of servers) {
            const left = await hosts.exec(i, "ls -d /etc/.consul-previous /usr/local/bin/consul.previous 2>/dev/null");
            assert.strictEqual(left.stdout.trim(), "", `host ${i} keeps ${left.stdout.trim()}`);
            const readable = await hosts.exec(
                i,
                `runuser -u consul -- grep -rlF "$(cat /etc/consul.d/tokens/management)" /etc/consul.d 2>/dev/null`,
            );
            assert.strictEqual(
                readable.stdout.trim(),
                "",
                `the consul user can read the management token on host ${i}`,
            );
        }
        const lost = await checkKeys();
        report(
            "c",
            `upgrade ${OLD_VERSION} → ${artifacts.consulVersion} (leadership handed over ` +
                `${d.mocks.runs.filter((r) => /transferring leadership/.test(r.stdout)).length}×, ` +
                `${elections.length} elections forced by a restarted server)`,
            w,
            lost,
        );
    });

    it("d. a failed upgrade (a binary that cannot start) is rolled back on the first server; the rollout stops there", async () => {
        await writeKeys("d");
        const pids = await Promise.all([2, 3].map((i) => mainPid(hosts, i)));
        const watch = await ScenarioWatch.start(liveServerAddrs(), liveServerAddrs(), access, "d-failed-upgrade");
        const d = await deploy(stackConfig(BROKEN_VERSION));
        const w = await watch.stop();
        assert.strictEqual(d.failures.length, 1, d.failures.map((f) => f.message).join("\n"));
        const failure = d.failures[0];
        assert.strictEqual(failure.host, addr(1));
        assert.match(
            failure.message,
            /consul-host-1 wait: FAILED: .*rolled back to the previous binary and files, and the old agent is running and healthy again/,
        );
        assert.deepStrictEqual(
            d.mocks.runs.map((r) => r.host),
            [addr(1)],
            "the rollout went past the failed host",
        );
        assert.match(
            await hosts.run(1, "/usr/local/bin/consul version"),
            new RegExp(`^Consul v${artifacts.consulVersion.replace(/\./g, "\\.")}`),
        );
        assert.deepStrictEqual(
            await Promise.all([2, 3].map((i) => mainPid(hosts, i))),
            pids,
            "servers 2 and 3 were touched",
        );
        await waitFor("autopilot healthy", autopilotHealthy, 60_000);
        // The next run with the same broken release stops at the same host again.
        const again = await deploy(stackConfig(BROKEN_VERSION));
        assert.deepStrictEqual(
            again.mocks.runs.map((r) => r.host),
            [addr(1)],
        );
        assert.strictEqual(again.failures.length, 1);
        // Back to the good release: nothing to do, the failed updates left the old state.
        const back = await deploy(stackConfig(artifacts.consulVersion));
        assertNoFailures(back.failures);
        assert.strictEqual(back.mocks.runs.length, 0);
        const lost = await checkKeys();
        report(
            "d",
            `failed upgrade to ${BROKEN_VERSION}, rolled back on ${name(1)}: ${failure.message.trim().split("\n").pop()}`,
            w,
            lost,
        );
    });

    it("h. a tampered release (another zip, or a re-hashed SHA256SUMS) is refused on the host: nothing installed, the old agent keeps running", async () => {
        const tampered = tamperedReleases();
        const pid1 = await mainPid(hosts, 1);
        const cases = [
            {
                kind: "sums",
                refusal:
                    /consul-host-1 install: FAILED: consul_1\.16\.8_SHA256SUMS is not signed by the release key [0-9A-F]{40} \(.*BAD signature/,
            },
            {
                kind: "zip",
                refusal:
                    /consul-host-1 install: FAILED: SHA-256 of consul_1\.16\.8_linux_amd64\.zip is [0-9a-f]{64}, expected [0-9a-f]{64}: the download is corrupt or was tampered with; nothing was installed/,
            },
        ] as const;
        const refusals: string[] = [];
        for (const c of cases) {
            assert.ok(mirror);
            mirror.addRelease(TAMPERED_VERSION, tampered[c.kind]);
            const d = await deploy(stackConfig(TAMPERED_VERSION));
            assert.strictEqual(d.failures.length, 1, d.failures.map((f) => f.message).join("\n"));
            assert.strictEqual(d.failures[0].host, addr(1));
            assert.match(d.failures[0].message, c.refusal);
            refusals.push(d.failures[0].message.trim().split("\n").pop() ?? "");
            assert.deepStrictEqual(
                d.mocks.runs.map((r) => r.host),
                [addr(1)],
                "the rollout went past the refusing host",
            );
            assert.strictEqual(await mainPid(hosts, 1), pid1, "server 1's agent was restarted");
            assert.match(
                await hosts.run(1, "/usr/local/bin/consul version"),
                new RegExp(`^Consul v${artifacts.consulVersion.replace(/\./g, "\\.")}`),
            );
            const staged = await hosts.exec(1, "ls /usr/local/bin/consul.new /tmp/consul-pulumi.* 2>/dev/null");
            assert.strictEqual(staged.stdout, "", "a staged binary or work directory was left behind");
        }
        const back = await deploy(stackConfig(artifacts.consulVersion));
        assertNoFailures(back.failures);
        assert.strictEqual(back.mocks.runs.length, 0);
        figure(`h. tampered releases refused on ${name(1)}: ${refusals.join(" | ")}`);
    });

    it("b. the SSH session to server 2 drops mid-rollout: the update fails there, quorum holds, the re-run waits for server 2's health before server 3", async () => {
        await writeKeys("b");
        const pid3 = await mainPid(hosts, 3);
        const invocation2 = async () => (await hosts.run(2, "systemctl show -p InvocationID --value consul")).trim();
        const before2 = await invocation2();
        overrides = { ...overrides, logLevel: "debug" };
        const watch = await ScenarioWatch.start(liveServerAddrs(), liveServerAddrs(), access, "b-ssh-drop");
        const deploying = deploy(stackConfig(artifacts.consulVersion));
        // Once server 2's agent has restarted, its step is in its health wait: kill our SSH client.
        await waitFor(
            "server 2's agent to restart under the rollout",
            async () => (await invocation2()) !== before2,
            300_000,
            200,
        );
        await hosts.dropApplySession(2);
        const d = await deploying;
        assert.strictEqual(d.failures.length, 1, d.failures.map((f) => f.message).join("\n"));
        assert.strictEqual(d.failures[0].host, addr(2));
        assert.match(d.failures[0].output, /consul-host-2 (swap|restart|wait)/);
        assert.strictEqual(await mainPid(hosts, 3), pid3, "server 3 was restarted after server 2's step failed");
        // The script on server 2 is not killed with the session: it finishes by itself.
        await waitFor("autopilot healthy", autopilotHealthy, 120_000);
        const again = await deploy(stackConfig(artifacts.consulVersion));
        const w = await watch.stop();
        assertNoFailures(again.failures);
        const run2 = again.mocks.runs.find((r) => r.host === addr(2));
        const run3 = again.mocks.runs.find((r) => r.host === addr(3));
        assert.ok(run2 && run3, "the re-run did not run servers 2 and 3");
        // Nothing left to change on server 2, and still its step ends only on a healthy cluster.
        assert.match(run2.stdout, /nothing changed, agent left running/);
        assert.match(run2.stdout, /alive, leader .*, autopilot healthy/);
        assert.ok(run3.startedAt >= run2.startedAt + run2.ms, "server 3 started before server 2's step ended");
        const self = await api(at(3), "/v1/agent/self", access);
        assert.match(self.body, /"LogLevel":"DEBUG"/);
        const lost = await checkKeys();
        report("b", `SSH drop on ${name(2)} during its wait; re-run converged`, w, lost);
    });

    it("f. the same machine reached on another SSH port, then by hostname instead of IP: no replace, same node ID, no key lost", async () => {
        await writeKeys("f");
        const id3 = await nodeId(3);
        await hosts.run(
            3,
            "printf 'Port 22\\nPort 2222\\n' > /etc/ssh/sshd_config.d/10-ports.conf && systemctl reload ssh && sleep 1",
        );
        // Host 3's certificate changes with the address form: the workload stays on hosts 1 and 2.
        const watch = await ScenarioWatch.start(liveServerAddrs(), [1, 2].map(at), access, "f-same-machine");
        entries[3] = `${name(3)}=${addr(3)}:2222`;
        const byPort = await deploy(stackConfig(artifacts.consulVersion));
        assertNoFailures(byPort.failures);
        assert.deepStrictEqual(
            byPort.mocks.runs.map((r) => `${r.op}@${r.host}`),
            [`update@${addr(3)}`],
            "a new SSH port must be an update of the same machine",
        );
        // The hostname resolves here (for SSH) and on the hosts (their /etc/hosts name each other).
        fs.appendFileSync("/etc/hosts", `${addr(3)} ${name(3)} ${etcHostsMarker}\n`);
        entries[3] = `${name(3)}=${name(3)}:2222`;
        apiAt[3] = name(3);
        const byName = await deploy(stackConfig(artifacts.consulVersion));
        assertNoFailures(byName.failures);
        assert.ok(
            byName.mocks.runs.every((r) => r.op !== "delete"),
            `something was deleted: ${byName.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ")}`,
        );
        const w = await watch.stop();
        assert.strictEqual(await nodeId(3), id3, "server 3 has a new node ID");
        const lost = await checkKeys();
        report(
            "f",
            `${name(3)} by port 2222, then by hostname: ${byName.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ")}`,
            w,
            lost,
        );
    });

    it("a. scale 3 → 5 servers: the new ones join as voters, the old ones are reloaded, not restarted", async () => {
        await writeKeys("a5");
        const pids = await Promise.all(servers.map((i) => mainPid(hosts, i)));
        const watch = await ScenarioWatch.start(liveServerAddrs(), liveServerAddrs(), access, "a-scale-up");
        servers = [1, 2, 3, 4, 5];
        const d = await deploy(stackConfig(artifacts.consulVersion));
        const w = await watch.stop();
        assertNoFailures(d.failures);
        assert.deepStrictEqual(
            await Promise.all([1, 2, 3].map((i) => mainPid(hosts, i))),
            pids,
            "an existing server was restarted",
        );
        await waitFor(
            "5 voters, autopilot healthy",
            async () => (await raftPeers()).filter((p) => p.Voter).length === 5 && (await autopilotHealthy()),
            120_000,
        );
        const lost = await checkKeys();
        report("a", `scale 3 → 5 (${d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ")})`, w, lost);
    });

    it("e. a dead server (powered off) listed in deadHosts: pruned from a live server, never contacted, quorum kept", async () => {
        await writeKeys("e");
        const dead = 5;
        await hosts.powerOff(dead);
        await waitFor(
            `${name(dead)} to show as failed`,
            async () => (await members()).find((m) => m.Name === name(dead))?.Status === 4,
            60_000,
        );
        const alive = servers.filter((i) => i !== dead).map(at);
        const watch = await ScenarioWatch.start(alive, alive, access, "e-dead-server");
        overrides = { ...overrides, deadHosts: JSON.stringify([name(dead)]) };
        const d = await deploy(stackConfig(artifacts.consulVersion));
        const w = await watch.stop();
        assertNoFailures(d.failures);
        assert.ok(!d.mocks.runs.some((r) => r.host === addr(dead)), "the dead host was contacted");
        const prune = d.mocks.runs.find((r) => r.name.endsWith("-prune"));
        assert.ok(prune, "no prune step ran");
        assert.match(prune.stdout, new RegExp(`${name(dead)} (force-left|removed from the Raft peers)`));
        const peers = await raftPeers();
        assert.ok(!peers.some((p) => p.Node === name(dead)), `${name(dead)} is still a Raft peer`);
        assert.strictEqual(peers.filter((p) => p.Voter).length, 4);
        servers = servers.filter((i) => i !== dead);
        const lost = await checkKeys();
        report("e", `dead ${name(dead)} pruned (${prune.stdout.trim().split("\n").join("; ")})`, w, lost);
    });

    it("a. scale down to 3: the live server leaves (one at a time, only while healthy), the dead one is dropped untouched", async () => {
        await writeKeys("a3");
        const watch = await ScenarioWatch.start(liveServerAddrs(), [1, 2, 3].map(at), access, "a-scale-down");
        servers = [1, 2, 3];
        overrides = { ...overrides, deadHosts: "[]" };
        const d = await deploy(stackConfig(artifacts.consulVersion));
        assertNoFailures(d.failures);
        const w = await watch.stop();
        assert.deepStrictEqual(
            d.mocks.runs.filter((r) => r.op === "delete").map((r) => r.host),
            [addr(4)],
            "only the live removed server runs a delete",
        );
        await waitFor(
            "3 voters, autopilot healthy",
            async () => (await raftPeers()).filter((p) => p.Voter).length === 3 && (await autopilotHealthy()),
            120_000,
        );
        assert.strictEqual(
            (await hosts.exec(4, "test -e /var/lib/consul || test -e /etc/consul.d")).code,
            1,
            "host 4 was not cleaned",
        );
        const lost = await checkKeys();
        report("a", `scale 5 → 3 (${d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ")})`, w, lost);
    });

    it("g. a server host reboots: the agent comes back by itself with the same node ID", async () => {
        await writeKeys("g");
        const id = await nodeId(2);
        const others = [1, 3].map(at);
        const watch = await ScenarioWatch.start(liveServerAddrs(), others, access, "g-reboot");
        // /run is the container's own tmpfs: a marker there is gone only if the machine really booted.
        await hosts.run(2, "touch /run/consul-e2e-before-reboot");
        await hosts.powerOff(2);
        await hosts.boot(2);
        assert.strictEqual(
            (await hosts.exec(2, "test -e /run/consul-e2e-before-reboot")).code,
            1,
            "host 2 did not reboot",
        );
        await waitFor(
            `${name(2)} alive again`,
            async () => (await members()).find((m) => m.Name === name(2))?.Status === 1,
            120_000,
        );
        await waitFor("autopilot healthy", autopilotHealthy, 120_000);
        const w = await watch.stop();
        assert.strictEqual(await nodeId(2), id);
        const lost = await checkKeys();
        report("g", `${name(2)} rebooted, node ID kept`, w, lost);
    });
});
