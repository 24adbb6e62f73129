// Lost quorum with more than one survivor, on real hosts: 5 servers deployed by the program
// (replayed over SSH, ./replay.ts), 1,000 keys, servers 3, 4 and 5 powered off for good. The
// recovery command (./recovery-cli.ts) recovers servers 1 and 2 together: both stopped, both given
// the same peers.json, started in order, one leader, 2 voters, every key. An odd number of dead
// servers is replaced in two pulumi ups, as the command says: the dead pruned through deadHosts,
// then dropped with a new host added: 3 voters, every key, no dead host contacted.

import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { raftServers, vmStackConfig } from "./checks";
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
import { recoverQuorum, recoverySeconds, writeStackFile } from "./recovery-cli";
import { assertNoFailures, Deployed, deployReplay, ReplayMocks } from "./replay";

const figures = new Figures();

describe("Lost quorum on real hosts, 3 of 5 servers dead: two survivors recovered together, then replaced in two pulumi ups", function () {
    this.timeout(30 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror | undefined;
    let state: ReplayMocks | undefined;
    let access: KvAccess = { ca: "", token: "" };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-recovery5-e2e-"));
    const stackFile = path.join(dir, "Pulumi.e2e.yaml");
    const dead = [3, 4, 5];

    const addr = (i: number) => hosts.hosts[i - 1].address;
    const name = (i: number) => hosts.hosts[i - 1].name;
    const config = (servers: number[], overrides: Record<string, string> = {}) =>
        vmStackConfig(
            hosts,
            { servers, clients: [] },
            { mirrorUrl: mirror?.url ?? "", consulVersion: artifacts.consulVersion },
            overrides,
        );
    const voters = async (i: number) =>
        (await raftServers(addr(i), access))
            .filter((p) => p.Voter)
            .map((p) => p.Node)
            .sort();
    const touchedDead = (d: Deployed) => d.mocks.runs.some((r) => dead.map(addr).includes(r.host));

    async function deploy(cfg: Record<string, string>): Promise<Deployed> {
        const d = await deployReplay(state, cfg);
        state = d.mocks;
        log(
            `deploy: ${d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ") || "none"}; ${d.failures.length} failure(s)`,
        );
        return d;
    }

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        hosts = await Hosts.up(6);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        const d = await deploy(config([1, 2, 3, 4, 5]));
        assertNoFailures(d.failures);
        access = { ca: String(d.outputs.caCertPem), token: String(d.outputs.aclManagementToken) };
        await assertOneLeader([1, 2, 3, 4, 5].map(addr), access.ca);
        writeStackFile(stackFile, config([1, 2, 3, 4, 5]));
    });

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        fs.rmSync(dir, { recursive: true, force: true });
        figures.print();
    });

    it("servers 3, 4 and 5 powered off: servers 1 and 2 recovered together, one leader, 2 voters, every key", async () => {
        await writeBulk(addr(1), access, "e2e/five");
        for (const i of dead) await hosts.powerOff(i);
        await waitFor(
            "servers 1 and 2 to have no leader",
            async () => (await leaderOf(addr(1), access.ca)) === "" && (await leaderOf(addr(2), access.ca)) === "",
            60_000,
        );
        const ids = await Promise.all(
            [1, 2].map(async (i) => (await hosts.run(i, "cat /var/lib/consul/node-id")).trim()),
        );
        const r = await recoverQuorum(stackFile, ["--dead", dead.map(name).join(",")]);
        assert.strictEqual(r.code, 0, r.stdout);
        const peers = [1, 2].map((i, k) => ({ id: ids[k], address: `${addr(i)}:8300`, non_voter: false }));
        assert.ok(r.stdout.includes(JSON.stringify(peers)), "peers.json lists both survivors in serverHosts order");
        const order = ["stop", "write", "start"].flatMap((p) =>
            [1, 2].map((i) => r.stdout.indexOf(`${name(i)} ${p}:`)),
        );
        assert.ok(
            order.every((at, k) => at >= 0 && (k === 0 || at > order[k - 1])),
            "each phase on 1 then 2, phase after phase",
        );
        assert.match(r.stdout, new RegExp(`1\\. list ${dead.map(name).join(", ")} in consul:deadHosts`));
        const leader = await assertOneLeader([1, 2].map(addr), access.ca);
        for (const i of [1, 2]) {
            assert.deepStrictEqual(await voters(i), [name(1), name(2)]);
            assert.strictEqual((await hosts.run(i, "systemctl is-active consul")).trim(), "active");
        }
        const lost = await assertNoKeyLost([1, 2].map(addr), access, ["e2e/five"]);
        figures.add(
            `recovery of 2 survivors: command ${(r.ms / 1000).toFixed(1)} s (first stop → leader ${recoverySeconds(r.stdout)} s), leader ${leader}, keys lost ${lost} of 1,000`,
        );
    });

    it("pulumi up with the dead in deadHosts prunes them; the next, with them dropped and a new host, gives 3 voters and every key", async () => {
        const pruned = await deploy(config([1, 2, 3, 4, 5], { deadHosts: JSON.stringify(dead.map(name)) }));
        assertNoFailures(pruned.failures);
        assert.ok(!touchedDead(pruned), "a dead host was contacted");
        assert.ok(
            pruned.mocks.runs.some((r) => r.name.endsWith("-prune")),
            "no prune step ran",
        );
        assert.deepStrictEqual(await voters(1), [name(1), name(2)]);

        const replaced = await deploy(config([1, 2, 6]));
        assertNoFailures(replaced.failures);
        assert.ok(!touchedDead(replaced), "a dead host was contacted");
        await waitFor(
            "3 voters, autopilot healthy",
            async () => {
                const health = await api(addr(1), "/v1/operator/autopilot/health", access);
                return (await voters(1)).length === 3 && (JSON.parse(health.body) as { Healthy: boolean }).Healthy;
            },
            180_000,
        );
        assert.deepStrictEqual(await voters(6), [name(1), name(2), name(6)].sort());
        await assertOneLeader([1, 2, 6].map(addr), access.ca);
        const lost = await assertNoKeyLost([1, 2, 6].map(addr), access, ["e2e/five"]);
        figures.add(
            `odd number dead replaced: prune pulumi up ${(pruned.ms / 1000).toFixed(1)} s (${pruned.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ")}), replace pulumi up ${(replaced.ms / 1000).toFixed(1)} s (${replaced.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ")}), 3 voters, keys lost ${lost}`,
        );
    });
});
