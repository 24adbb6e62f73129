// Gossip-key rotation by `pulumi up`, on real hosts (issue 16, part 1): a new consul:gossipKeyKeeper
// runs Consul's keyring protocol around the rollout (components/vm/scripts/keyring.sh: install
// before, use + remove after). Deployed by the program's own commands, replayed over SSH
// (./replay.ts), on 3 servers and 2 clients, with a sixth host for the agents that come later.

import * as assert from "assert";
import { consulLogSince, mainPid, membersAt, vmStackConfig } from "./checks";
import { api, Artifacts, ensureArtifacts, Figures, Hosts, log, Mirror, requirePrerequisites, waitFor } from "./infra";
import { assertNoKeyLost, assertOneLeader, KvAccess, writeBulk } from "./kv-checks";
import { assertNoFailures, Deployed, deployReplay, ReplayMocks } from "./replay";
import { MemberWatch } from "./member-watch";
import { firstLine, RogueHost } from "./rogue";

const SERVERS = [1, 2, 3];
const SPARE = 6;

const figures = new Figures();
const figure = (line: string) => figures.add(line);

/** One pool of `GET /v1/operator/keyring`. */
interface KeyringPool {
    readonly WAN: boolean;
    readonly Keys: Record<string, number>;
    readonly PrimaryKeys: Record<string, number>;
    readonly NumNodes: number;
}

describe("Gossip-key rotation by pulumi up, on real hosts", function () {
    this.timeout(30 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror | undefined;
    let state: ReplayMocks | undefined;
    let access: KvAccess = { ca: "", token: "" };
    let clients = [4, 5];
    let keeper = "initial";
    /** The stack's gossip key after the last deploy, and the one before the rotation. */
    let gossipKey = "";
    let rotatedOut = "";
    const prefixes: string[] = [];

    const addr = (i: number) => hosts.hosts[i - 1].address;
    const name = (i: number) => hosts.hosts[i - 1].name;
    const serverAddrs = () => SERVERS.map(addr);
    const stackConfig = () =>
        vmStackConfig(
            hosts,
            { servers: SERVERS, clients },
            { mirrorUrl: mirror?.url ?? "", consulVersion: artifacts.consulVersion },
            { gossipKeyKeeper: keeper },
        );

    async function deploy(): Promise<Deployed> {
        const d = await deployReplay(state, stackConfig());
        state = d.mocks;
        gossipKey = String(d.outputs.gossipKey);
        log(
            `deploy: ${d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ") || "none"}; ${d.failures.length} failure(s)`,
        );
        return d;
    }
    const stdoutOf = (d: Deployed, resource: string) =>
        d.mocks.runs
            .filter((r) => r.name.endsWith(resource))
            .map((r) => r.stdout)
            .join("");

    /** The keyring as every member reports it (Consul answers 500 while one does not answer yet). */
    async function keyring(): Promise<KeyringPool[]> {
        let body = "";
        await waitFor(
            "every member to answer the keyring query",
            async () => {
                const r = await api(addr(1), "/v1/operator/keyring", access);
                body = r.body;
                return r.status === 200;
            },
            60_000,
            1000,
        );
        return JSON.parse(body) as KeyringPool[];
    }
    /** Every pool holds exactly `key`, on all its members, as their primary key. */
    async function assertOnlyKey(key: string, lanMembers: number): Promise<string> {
        const pools = await keyring();
        for (const pool of pools) {
            const members = pool.WAN ? SERVERS.length : lanMembers;
            assert.deepStrictEqual(pool.Keys, { [key]: members }, `${pool.WAN ? "WAN" : "LAN"} keys`);
            assert.deepStrictEqual(pool.PrimaryKeys, { [key]: members }, `${pool.WAN ? "WAN" : "LAN"} primary`);
        }
        return pools.map((p) => `${p.WAN ? "WAN" : "LAN"} 1 key on ${p.NumNodes}/${p.NumNodes}`).join(", ");
    }
    const pids = () => Promise.all([...SERVERS, ...clients].map((i) => mainPid(hosts, i)));

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        hosts = await Hosts.up(SPARE);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        const d = await deploy();
        assertNoFailures(d.failures);
        access = { ca: String(d.outputs.caCertPem), token: String(d.outputs.aclManagementToken) };
        await assertOneLeader(serverAddrs(), access.ca);
        // A first deploy: nothing to install, and the keyring ends with the one key.
        assert.match(stdoutOf(d, "keyring-install"), /no Consul server answers yet: a new cluster/);
        assert.match(
            stdoutOf(d, "keyring-finish"),
            /one gossip key, primary on every member .*; 0 old key\(s\) removed/,
        );
        await assertOnlyKey(String(d.outputs.gossipKey), 5);
    });

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        figures.print();
    });

    it("i. a new keeper rotates the key with every member alive at 1 s polling, no agent restarted; cut off after the install, the re-run finishes", async () => {
        const oldKey = gossipKey;
        await writeBulk(addr(1), access, "rotation/i");
        prefixes.push("rotation/i");
        const pidsBefore = await pids();
        const watch = new MemberWatch(() => addr(1), access, [...SERVERS, ...clients].map(name));
        // Server 2 refuses new SSH logins for a while: the update stops at its step, after the
        // install step and server 1's. (A timer on the host lifts the block.)
        await hosts.run(
            2,
            "systemd-run --quiet --on-active=40 --unit=e2e-ssh-back sh -c 'rm -f /etc/ssh/sshd_config.d/90-e2e-deny.conf && systemctl reload ssh' && " +
                "printf 'DenyUsers root\\n' > /etc/ssh/sshd_config.d/90-e2e-deny.conf && systemctl reload ssh",
        );
        keeper = "rotated-1";
        const cut = await deploy();
        assert.strictEqual(cut.failures.length, 1, cut.failures.map((f) => f.message).join("\n"));
        assert.strictEqual(cut.failures[0].host, addr(2));
        assert.match(stdoutOf(cut, "keyring-install"), /new gossip key installed on every member/);
        // Interrupted: both keys on every member, the old one still primary.
        const newKey = gossipKey;
        assert.notStrictEqual(newKey, oldKey);
        rotatedOut = oldKey;
        for (const pool of await keyring()) {
            const members = pool.WAN ? 3 : 5;
            assert.deepStrictEqual(pool.Keys, { [oldKey]: members, [newKey]: members }, JSON.stringify(pool.Keys));
            assert.deepStrictEqual(Object.keys(pool.PrimaryKeys), [oldKey]);
        }
        await waitFor(
            "server 2 to take SSH logins again",
            async () => (await hosts.exec(2, "true")).code === 0,
            90_000,
            1000,
        );
        const again = await deploy();
        assertNoFailures(again.failures);
        assert.match(
            stdoutOf(again, "keyring-finish"),
            /one gossip key, primary on every member .*; 1 old key\(s\) removed/,
        );
        await watch.stop();
        assert.deepStrictEqual(watch.notAlive, [], "a member was not alive during the rotation");
        assert.ok(watch.samples >= 10, `only ${watch.samples} samples`);
        const ring = await assertOnlyKey(newKey, 5);
        assert.deepStrictEqual(await pids(), pidsBefore, "an agent was restarted");
        await assertOneLeader(serverAddrs(), access.ca);
        const lost = await assertNoKeyLost(serverAddrs(), access, prefixes);
        figure(
            `i. gossip-key rotation, cut off at ${name(2)} after the install and re-run: ${watch.samples} polls at 1 s, every member alive in each; ${ring}; 0 agents restarted; keys lost ${lost}`,
        );
    });

    it("j. after the rotation, an agent with only the old key is refused (the servers cannot decrypt it); a new client with the new key joins", async () => {
        assert.ok(rotatedOut, "scenario i did not rotate the key");
        const newKey = gossipKey;
        const agentToken = (await hosts.run(1, "cat /etc/consul.d/tokens/agent")).trim();
        const rogue = new RogueHost(
            hosts,
            SPARE,
            { mirrorUrl: mirror?.url ?? "", consulVersion: artifacts.consulVersion },
            { serverAddrs: serverAddrs(), api: access },
        );
        const started = Date.now();
        await rogue.start(
            "rogue-old-key",
            {
                "ca.pem": access.ca,
                "acl.json": JSON.stringify({ acl: { tokens: { agent: agentToken } } }),
                "enc.json": JSON.stringify({ encrypt: rotatedOut }),
            },
            {
                server: false,
                auto_encrypt: { tls: true },
                acl: { enabled: true, default_policy: "deny" },
                tls: {
                    defaults: { ca_file: "/etc/rogue-rogue-old-key/ca.pem", verify_outgoing: true },
                    internal_rpc: { verify_server_hostname: true },
                },
            },
        );
        await new Promise((r) => setTimeout(r, 15_000));
        const member = (await membersAt(addr(1), access)).find((m) => m.Name === "rogue-old-key");
        const logs = await rogue.stop("rogue-old-key");
        const serverLogs = (await Promise.all(SERVERS.map((i) => consulLogSince(hosts, i, started)))).join("\n");
        const refused = new RegExp(`No installed keys could decrypt[^\\n]*${addr(SPARE).replace(/\./g, "\\.")}`);
        figure(
            `j. an agent with the old key: serf status ${member?.Status ?? "absent"}; the servers' log: ${firstLine(serverLogs, refused)}`,
        );
        assert.match(serverLogs, refused, "no server logged the old-key agent's gossip as undecryptable");
        assert.ok(member === undefined || member.Status !== 1, "an agent with the old key joined");
        assert.ok(!logs.includes(newKey), "the rogue's log holds the new key");
        await hosts.run(SPARE, "rm -rf /etc/rogue-* /var/lib/rogue-*");

        clients = [4, 5, SPARE];
        const d = await deploy();
        assertNoFailures(d.failures);
        const joined = (await membersAt(addr(1), access)).find((m) => m.Name === name(SPARE));
        assert.strictEqual(joined?.Status, 1, `${name(SPARE)} did not join`);
        const ring = await assertOnlyKey(newKey, 6);
        figure(`j. a client added after the rotation, with only the new key in its config: alive; ${ring}`);
    });

    it("k. a client that is down through a rotation keeps only the old key in its keyring: its step puts the new one first there, restarts it, and it rejoins", async () => {
        // (A server that is down blocks any update at the first server's health gate, rotation or
        // not: bring it back or list it in deadHosts first.)
        const client = 5;
        await hosts.run(client, "systemctl stop consul");
        const oldKey = gossipKey;
        keeper = "rotated-2";
        const d = await deploy();
        assertNoFailures(d.failures);
        assert.notStrictEqual(gossipKey, oldKey);
        assert.match(stdoutOf(d, "keyring-install"), /new gossip key installed on/);
        const step = stdoutOf(d, `client-${name(client)}-agent`);
        assert.match(step, /the persisted keyring lacks the configured gossip key: it becomes the primary key/);
        assert.match(step, /agent running, leader /);
        assert.match(stdoutOf(d, "keyring-finish"), /1 old key\(s\) removed/);
        const ring = await assertOnlyKey(gossipKey, 6);
        // What the client keeps on disk is the one new key (the finish step rewrote every keyring).
        const onDisk = JSON.parse(await hosts.run(client, "cat /var/lib/consul/serf/local.keyring")) as string[];
        assert.deepStrictEqual(onDisk, [gossipKey]);
        const member = (await membersAt(addr(1), access)).find((m) => m.Name === name(client));
        assert.strictEqual(member?.Status, 1, `${name(client)} is not alive`);
        const lost = await assertNoKeyLost(serverAddrs(), access, prefixes);
        figure(
            `k. rotation with ${name(client)} stopped: its old keyring got the new key first, it rejoined; ${ring}; keys lost ${lost}`,
        );
    });
});
