// CA rotation by three `pulumi up`s, on real hosts (issue 16, part 2): caKeeper/caPreviousKeeper with
// caRotationPhase trust, then reissue, then the old CA dropped (components/security/pki.ts). Deployed
// by the program's own commands, replayed over SSH (./replay.ts), on 3 servers and 2 clients, with
// a sixth host for an agent that still holds a certificate from the old CA.

import * as assert from "assert";
import { consulLogSince, mainPid, membersAt, peerCertificate, raftServers, vmStackConfig } from "./checks";
import { api, Artifacts, ensureArtifacts, Figures, Hosts, log, Mirror, requirePrerequisites } from "./infra";
import { assertNoKeyLost, assertOneLeader, KvAccess, writeBulk } from "./kv-checks";
import { assertNoFailures, Deployed, deployReplay, ReplayMocks } from "./replay";
import { firstLine, RogueHost } from "./rogue";

const SERVERS = [1, 2, 3];
const CLIENTS = [4, 5];
const ROGUE = 6;

const figures = new Figures();

/** GETs a key every 200 ms through a client agent and a server, and keeps every failure. */
class KvPoll {
    samples = 0;
    readonly failures: string[] = [];
    private running = true;
    private readonly done: Promise<void>;

    constructor(targets: readonly string[], access: () => KvAccess) {
        this.done = (async () => {
            while (this.running) {
                await Promise.all(
                    targets.map(async (address) => {
                        const at = new Date().toISOString();
                        try {
                            const r = await api(address, "/v1/kv/ca-rotation/probe", { ...access(), timeoutMs: 2000 });
                            if (r.status !== 200) this.failures.push(`${at} ${address}: HTTP ${r.status} ${r.body}`);
                        } catch (e) {
                            this.failures.push(`${at} ${address}: ${(e as Error).message}`);
                        }
                    }),
                );
                this.samples++;
                await new Promise((r) => setTimeout(r, 200));
            }
        })();
    }

    async stop(): Promise<void> {
        this.running = false;
        await this.done;
    }
}

describe("CA rotation by three pulumi ups, on real hosts", function () {
    this.timeout(30 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror | undefined;
    let state: ReplayMocks | undefined;
    let access: KvAccess = { ca: "", token: "" };
    let outputs: Record<string, unknown> = {};

    const addr = (i: number) => hosts.hosts[i - 1].address;
    const serverAddrs = () => SERVERS.map(addr);
    const release = () => ({ mirrorUrl: mirror?.url ?? "", consulVersion: artifacts.consulVersion });

    async function deploy(overrides: Record<string, string>): Promise<Deployed> {
        const cfg = vmStackConfig(hosts, { servers: SERVERS, clients: CLIENTS }, release(), overrides);
        const d = await deployReplay(state, cfg);
        state = d.mocks;
        outputs = d.outputs;
        log(
            `deploy: ${d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ") || "none"}; ${d.failures.length} failure(s)`,
        );
        return d;
    }
    const pids = () => Promise.all([...SERVERS, ...CLIENTS].map((i) => mainPid(hosts, i)));
    /** What each host's step did to its agent: none, reload or restart. */
    const actions = (d: Deployed) =>
        d.mocks.runs.filter((r) => r.name.endsWith("-agent")).map((r) => /action: (\w+)/.exec(r.stdout)?.[1] ?? "?");

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        hosts = await Hosts.up(ROGUE);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        const d = await deploy({});
        assertNoFailures(d.failures);
        access = { ca: String(d.outputs.caCertPem), token: String(d.outputs.aclManagementToken) };
        await assertOneLeader(serverAddrs(), access.ca);
    });

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        figures.print();
    });

    it("l. trust both, reissue, drop the old CA: no failed KV read through a client or a server at 200 ms, every agent reloaded (none restarted); an old-CA certificate is refused after", async () => {
        await writeBulk(addr(1), access, "ca-rotation/bulk");
        const put = await api(addr(1), "/v1/kv/ca-rotation/probe", { ...access, method: "PUT", body: "v" });
        assert.strictEqual(put.status, 200, put.body);
        const oldCa = access.ca;
        const oldServer = {
            ca: oldCa,
            cert: await hosts.run(1, "cat /etc/consul.d/tls/server.pem"),
            key: await hosts.run(1, "cat /etc/consul.d/tls/server-key.pem"),
        };
        // The clients' HTTPS certificate comes from the Connect CA (auto_encrypt), not ours.
        const roots = await api(addr(1), "/v1/connect/ca/roots?pem=true", access);
        assert.strictEqual(roots.status, 200, roots.body);
        const clientIssuer = async () =>
            String((await peerCertificate(addr(CLIENTS[0]), 8501, { rejectUnauthorized: false })).issuer.CN);
        const connectIssuer = await clientIssuer();
        // The test trusts what an app would: the stack's caCertPem output, plus the Connect roots.
        let trusted = oldCa + roots.body;
        const poll = new KvPoll([addr(CLIENTS[0]), addr(2)], () => ({ ...access, ca: trusted }));
        const pidsBefore = await pids();
        const phases: string[] = [];
        const rotating = { caKeeper: "2027", caPreviousKeeper: "initial" };
        for (const [phase, overrides] of [
            ["trust", { ...rotating, caRotationPhase: "trust" }],
            ["reissue", { ...rotating, caRotationPhase: "reissue" }],
            ["drop the old CA", { caKeeper: "2027" }],
        ] as const) {
            const d = await deploy(overrides);
            assertNoFailures(d.failures);
            // Before the next phase presents certificates from the new CA, an app trusts it too.
            trusted = String(outputs.caCertPem) + oldCa + roots.body;
            const did = actions(d);
            assert.ok(did.length === 5 && did.every((a) => a === "reload"), `${phase}: ${did.join(" ")}`);
            phases.push(`${phase} (${did.length} reloads)`);
        }
        await poll.stop();
        assert.deepStrictEqual(poll.failures, [], "a KV read failed during the rotation");
        assert.ok(poll.samples >= 50, `only ${poll.samples} polls`);
        assert.deepStrictEqual(await pids(), pidsBefore, "an agent was restarted");

        const newCa = String(outputs.caCertPem);
        assert.strictEqual(newCa.match(/BEGIN CERTIFICATE/g)?.length, 1);
        assert.notStrictEqual(newCa, oldCa);
        access = { ...access, ca: newCa };
        for (const i of SERVERS) {
            assert.strictEqual((await hosts.run(i, "cat /etc/consul.d/tls/ca.pem")).trim(), newCa.trim());
            const presented = await peerCertificate(addr(i), 8501, { ca: newCa, servername: "server.dc1.consul" });
            assert.match(String(presented.issuer.CN), /\(2027\)$/);
        }
        // Auto-encrypt clients: their certificate is still the Connect CA's, and they stayed members.
        assert.strictEqual(await clientIssuer(), connectIssuer);
        const members = await membersAt(addr(1), access);
        for (const i of CLIENTS) {
            assert.strictEqual(members.find((m) => m.Name === hosts.hosts[i - 1].name)?.Status, 1);
        }
        await assertOneLeader(serverAddrs(), access.ca);
        const lost = await assertNoKeyLost(serverAddrs(), access, ["ca-rotation/bulk"]);

        // A server that still holds a certificate from the old CA (and the gossip key) is refused.
        const rogue = new RogueHost(hosts, ROGUE, release(), { serverAddrs: serverAddrs(), api: access });
        const started = Date.now();
        await rogue.startServer("rogue-old-ca", oldServer, String(outputs.gossipKey));
        await new Promise((r) => setTimeout(r, 15_000));
        const inRaft = (await raftServers(addr(1), access)).find((s) => s.Node === "rogue-old-ca");
        const rogueLog = await rogue.stop("rogue-old-ca");
        const serverLogs = (await Promise.all(SERVERS.map((i) => consulLogSince(hosts, i, started)))).join("\n");
        const refused = /x509: certificate signed by unknown authority|tls: (bad|unknown) certificate/;
        figures.add(
            `l. CA rotation: ${phases.join(", ")}; ${poll.samples} polls at 200 ms through ${hosts.hosts[CLIENTS[0] - 1].name} (RPC to the servers) and a server, 0 failed; ` +
                `0 agents restarted; clients' HTTPS certificate still from "${connectIssuer}"; keys lost ${lost}; ` +
                `an old-CA server: in Raft ${inRaft ? "yes" : "no"}, its log: ${firstLine(rogueLog, refused)}; the servers' log: ${firstLine(serverLogs, refused)}`,
        );
        assert.ok(!inRaft?.Voter, "a server with an old-CA certificate became a voter");
        assert.ok(refused.test(rogueLog) || refused.test(serverLogs), "no TLS refusal of the old-CA server was logged");
        assert.match(serverLogs, refused, "no server logged a TLS rejection of the old-CA certificate");
    });
});
