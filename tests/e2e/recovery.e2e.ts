// Lost quorum on real hosts, recovered with the operator's command (scripts/recover-quorum.ts, run
// as a child process from the stack file, as an operator would): 3 servers and a client deployed
// by the program (replayed over SSH, ./replay.ts), 1,000 keys written, servers 2 and 3 powered off
// for good, no leader; the command refuses what it must (a leader, a wrong dead list, a host key it
// cannot verify) touching nothing, then recovers server 1: a leader and every key. Then pulumi up
// with the dead servers listed in deadHosts and two new hosts in their place brings back 3 voters,
// and a last pulumi up drops the dead ones from the lists without contacting them.

import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { mainPid, raftServers, vmStackConfig } from "./checks";
import {
    api,
    Artifacts,
    ensureArtifacts,
    Figures,
    Hosts,
    leaderOf,
    log,
    Mirror,
    requirePrerequisites,
    waitFor,
} from "./infra";
import { assertNoKeyLost, assertOneLeader, KvAccess, writeBulk } from "./kv-checks";
import { assertNoFailures, Deployed, deployReplay, ReplayMocks } from "./replay";
import {
    assertUntouched,
    recoverQuorum as runCommand,
    recoverySeconds,
    writeStackFile as writeFile,
} from "./recovery-cli";

const CLIENT = 6;
const figures = new Figures();

describe("Lost quorum on real hosts: the guided recovery, then pulumi up back to 3 voters", function () {
    this.timeout(30 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror | undefined;
    let state: ReplayMocks | undefined;
    let access: KvAccess = { ca: "", token: "" };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-recovery-e2e-"));
    const stackFile = path.join(dir, "Pulumi.e2e.yaml");
    const writeStackFile = (cfg: Record<string, string>) => writeFile(stackFile, cfg);
    const recoverQuorum = (args: string[], file = stackFile) => runCommand(file, args);
    const untouched = (servers: number[], pids: number[]) => assertUntouched(hosts, servers, pids);

    const addr = (i: number) => hosts.hosts[i - 1].address;
    const name = (i: number) => hosts.hosts[i - 1].name;
    const config = (servers: number[], overrides: Record<string, string> = {}) =>
        vmStackConfig(
            hosts,
            { servers, clients: [CLIENT] },
            { mirrorUrl: mirror?.url ?? "", consulVersion: artifacts.consulVersion },
            overrides,
        );

    async function deploy(cfg: Record<string, string>): Promise<Deployed> {
        const d = await deployReplay(state, cfg);
        state = d.mocks;
        log(
            `deploy: ${d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ") || "none"}; ${d.failures.length} failure(s)`,
        );
        return d;
    }

    const voters = async (i: number) =>
        (await raftServers(addr(i), access))
            .filter((p) => p.Voter)
            .map((p) => p.Node)
            .sort();

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        hosts = await Hosts.up(6);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        const d = await deploy(config([1, 2, 3]));
        assertNoFailures(d.failures);
        access = { ca: String(d.outputs.caCertPem), token: String(d.outputs.aclManagementToken) };
        await assertOneLeader([1, 2, 3].map(addr), access.ca);
        writeStackFile(config([1, 2, 3]));
    });

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        fs.rmSync(dir, { recursive: true, force: true });
        figures.print();
    });

    it("refuses while the cluster has a leader, and refuses a host whose key is not the pinned one: nothing touched", async () => {
        const pids = await Promise.all([1, 2, 3].map((i) => mainPid(hosts, i)));
        const r = await recoverQuorum(["--dead", `${name(2)},${name(3)}`]);
        assert.strictEqual(r.code, 2);
        assert.match(r.stdout, /Refusing to recover; nothing was changed/);
        assert.match(
            r.stdout,
            new RegExp(`${name(1)} sees a leader \\(\\d+\\.\\d+\\.\\d+\\.\\d+:8300\\): quorum is not lost`),
        );
        assert.match(r.stdout, new RegExp(`${name(2)} is named dead but answers over SSH`));
        // Host 1 pinned with host 2's key: ssh refuses host 1 before logging in.
        const cfg = config([1, 2, 3]);
        const keys = (JSON.parse(cfg.sshHostKeys) as string[]).map((k, n) =>
            n === 0 ? `${name(1)}=${hosts.hostKeys[1]}` : k,
        );
        const wrongKey = path.join(dir, "Pulumi.e2e-wrong-key.yaml");
        const saved = fs.readFileSync(stackFile, "utf8");
        writeStackFile({ ...cfg, sshHostKeys: JSON.stringify(keys) });
        fs.renameSync(stackFile, wrongKey);
        fs.writeFileSync(stackFile, saved);
        const bad = await recoverQuorum(["--dead", `${name(2)},${name(3)}`, "--stack", "e2e"], wrongKey);
        assert.strictEqual(bad.code, 2);
        assert.match(
            bad.stdout,
            new RegExp(
                `${name(1)} \\(${addr(1).replace(/\./g, "\\.")}\\): answers, but the inspection failed \\(Host key verification failed`,
            ),
        );
        assert.match(bad.stdout, new RegExp(`${name(1)} answered over SSH but its inspection failed`));
        await untouched([1, 2, 3], pids);
        figures.add(
            `refusals with a leader: exit ${r.code} in ${(r.ms / 1000).toFixed(1)} s; wrong host key: exit ${bad.code}`,
        );
    });

    it("servers 2 and 3 powered off for good: no leader; the command refuses a wrong dead list, then recovers server 1 with every key", async () => {
        await writeBulk(addr(1), access, "e2e/recovery");
        const lostAt = Date.now();
        await hosts.powerOff(2);
        await hosts.powerOff(3);
        await waitFor("server 1 to lose its leader", async () => (await leaderOf(addr(1), access.ca)) === "", 60_000);
        // Still none a while later: quorum is lost, not in an election.
        await new Promise((r) => setTimeout(r, 5000));
        assert.strictEqual(await leaderOf(addr(1), access.ca), "", "server 1 found a leader without servers 2 and 3");
        const pid1 = await mainPid(hosts, 1);

        const partial = await recoverQuorum(["--dead", name(2)]);
        assert.strictEqual(partial.code, 2);
        assert.match(partial.stdout, new RegExp(`${name(3)} cannot be reached .* and is not named dead`));
        const dry = await recoverQuorum(["--dead", `${name(2)},${name(3)}`, "--dry-run"]);
        assert.strictEqual(dry.code, 0);
        assert.match(dry.stdout, /--dry-run: nothing was changed/);
        await untouched([1], [pid1]);

        const nodeId = (await hosts.run(1, "cat /var/lib/consul/node-id")).trim();
        const r = await recoverQuorum(["--dead", `${name(2)},${name(3)}`]);
        assert.strictEqual(r.code, 0, r.stdout);
        assert.ok(
            r.stdout.includes(JSON.stringify([{ id: nodeId, address: `${addr(1)}:8300`, non_voter: false }])),
            "peers.json",
        );
        assert.match(r.stdout, /Next: .*consul:deadHosts/s);
        const inner = recoverySeconds(r.stdout);
        assert.strictEqual(await leaderOf(addr(1), access.ca), `${addr(1)}:8300`);
        assert.deepStrictEqual(await voters(1), [name(1)]);
        assert.strictEqual((await hosts.run(1, "systemctl is-active consul")).trim(), "active");
        assert.strictEqual(
            (await hosts.exec(1, "test -e /var/lib/consul/raft/peers.json")).code,
            1,
            "peers.json not consumed",
        );
        const lost = await assertNoKeyLost([addr(1)], access, ["e2e/recovery"]);
        figures.add(
            `recovery: command ${(r.ms / 1000).toFixed(1)} s (first stop → leader ${inner} s), loss → leader ${((Date.now() - lostAt) / 1000).toFixed(0)} s with the refusals, keys lost ${lost} of 1,000`,
        );
    });

    it("pulumi up with the dead servers in deadHosts and two new hosts: 3 voters, every key; then the dead ones dropped untouched", async () => {
        const replaced = config([1, 2, 3, 4, 5], { deadHosts: JSON.stringify([name(2), name(3)]) });
        const d = await deploy(replaced);
        assertNoFailures(d.failures);
        assert.ok(!d.mocks.runs.some((r) => r.host === addr(2) || r.host === addr(3)), "a dead host was contacted");
        const prune = d.mocks.runs.find((r) => r.name.endsWith("-prune"));
        assert.ok(prune, "no prune step ran");
        const live = [1, 4, 5];
        await waitFor(
            "3 voters, autopilot healthy",
            async () => {
                const health = await api(addr(1), "/v1/operator/autopilot/health", access);
                return (await voters(1)).length === 3 && (JSON.parse(health.body) as { Healthy: boolean }).Healthy;
            },
            180_000,
        );
        assert.deepStrictEqual(await voters(1), live.map(name).sort());
        await assertOneLeader(live.map(addr), access.ca);
        let lost = await assertNoKeyLost(live.map(addr), access, ["e2e/recovery"]);

        const cleaned = await deploy(config(live));
        assertNoFailures(cleaned.failures);
        assert.ok(
            !cleaned.mocks.runs.some((r) => r.host === addr(2) || r.host === addr(3)),
            "a dead host was contacted",
        );
        assert.deepStrictEqual(await voters(4), live.map(name).sort());
        lost = Math.max(lost, await assertNoKeyLost(live.map(addr), access, ["e2e/recovery"]));
        figures.add(
            `replace: pulumi up ${(d.ms / 1000).toFixed(1)} s (${d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ")}), 3 voters, keys lost ${lost}; cleanup pulumi up ${(cleaned.ms / 1000).toFixed(1)} s, ${cleaned.mocks.runs.length} SSH session(s)`,
        );
    });
});
