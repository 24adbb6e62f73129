// What a healthy, secure cluster on the test hosts looks like, checked against the running agents:
// shared by the replay suite (cluster.e2e.ts) and the real-engine suite (../engine/engine.e2e.ts),
// so both deploy paths are held to the same checks.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import { api, ApiOptions, Hosts, leaderOf, waitFor } from "./infra";

export interface ClusterAccess {
    readonly hosts: Hosts;
    /** Host numbers (1-based) of the servers and the clients in the stack. */
    readonly servers: readonly number[];
    readonly clients: readonly number[];
    /** Our CA certificate and the ACL management token (stack outputs). */
    readonly ca: string;
    readonly token: string;
}

export interface Member {
    Name: string;
    Status: number;
    Tags: Record<string, string>;
}

/**
 * The `vm` stack config (keys without the `consul:` prefix) for the test hosts: servers and clients
 * by host number, root over SSH with the hosts' key, each host's own SSH host key pinned (the
 * suites deploy stack "e2e", not a development stack), Consul from the mirror on the bridge.
 */
export function vmStackConfig(
    hosts: Hosts,
    placement: { servers: readonly number[]; clients: readonly number[] },
    release: { mirrorUrl: string; consulVersion: string },
    overrides: Record<string, string> = {},
): Record<string, string> {
    const entry = (i: number) => `${hosts.hosts[i - 1].name}=${hosts.hosts[i - 1].address}`;
    return {
        topology: "vm",
        serverCount: String(placement.servers.length),
        serverHosts: JSON.stringify(placement.servers.map(entry)),
        clientHosts: JSON.stringify(placement.clients.map(entry)),
        sshUser: "root",
        sshPrivateKeyPath: hosts.sshKeyPath,
        sshHostKeys: JSON.stringify(
            [...placement.servers, ...placement.clients].map(
                (i) => `${hosts.hosts[i - 1].name}=${hosts.hostKeys[i - 1]}`,
            ),
        ),
        releaseMirrorUrl: release.mirrorUrl,
        // The test mirror is python's http.server on the bridge; the release signature is checked.
        releaseMirrorAllowHttp: "true",
        consulVersion: release.consulVersion,
        aclDefaultPolicy: "deny",
        ...overrides,
    };
}

export function addressOf(access: Pick<ClusterAccess, "hosts">, i: number): string {
    return access.hosts.hosts[i - 1].address;
}

function asMgmt(access: ClusterAccess, extra: Partial<ApiOptions> = {}): ApiOptions {
    return { ca: access.ca, token: access.token, ...extra };
}

/** The member list as the first server sees it. */
export function members(access: ClusterAccess): Promise<Member[]> {
    return membersAt(addressOf(access, access.servers[0]), asMgmt(access));
}

/** The member list as the agent at `address` sees it. */
export async function membersAt(address: string, opts: ApiOptions): Promise<Member[]> {
    const r = await api(address, "/v1/agent/members", opts);
    assert.strictEqual(r.status, 200, r.body);
    return JSON.parse(r.body) as Member[];
}

export interface RaftServer {
    Node: string;
    Voter: boolean;
}

/** The Raft configuration's servers, as the server at `address` answers. */
export async function raftServers(address: string, opts: ApiOptions): Promise<RaftServer[]> {
    const r = await api(address, "/v1/operator/raft/configuration", opts);
    assert.strictEqual(r.status, 200, r.body);
    return (JSON.parse(r.body) as { Servers: RaftServer[] }).Servers;
}

/**
 * The agent's node ID at `address`. A just-restarted agent answers "ACL system …" until its tokens
 * are loaded: this waits (up to `timeoutMs`) for a 200.
 */
export async function agentNodeId(address: string, opts: ApiOptions, timeoutMs: number): Promise<string> {
    let body = "";
    await waitFor(
        `${address}'s /v1/agent/self`,
        async () => {
            const r = await api(address, "/v1/agent/self", opts);
            body = r.body;
            return r.status === 200;
        },
        timeoutMs,
    );
    return (JSON.parse(body) as { Config: { NodeID: string } }).Config.NodeID;
}

/** The certificate the TLS listener at address:port presents (3 s to connect). */
export function peerCertificate(
    address: string,
    port: number,
    opts: Pick<tls.ConnectionOptions, "ca" | "servername" | "rejectUnauthorized">,
): Promise<tls.PeerCertificate> {
    return new Promise((resolve, reject) => {
        const socket = tls.connect({ host: address, port, ...opts }, () => {
            resolve(socket.getPeerCertificate());
            socket.end();
        });
        socket.on("error", reject);
        socket.setTimeout(3000, () => socket.destroy(new Error("timeout")));
    });
}

/** What consul.service on host i logged since `since` (ms since the epoch), message text only. */
export function consulLogSince(hosts: Hosts, i: number, since: number): Promise<string> {
    return hosts.run(i, `journalctl -u consul --no-pager -o cat --since @${Math.floor(since / 1000)}`);
}

export async function mainPid(hosts: Hosts, i: number): Promise<number> {
    const out = await hosts.run(i, "systemctl show -p MainPID --value consul.service");
    return parseInt(out.trim(), 10);
}

async function unitTimestamp(hosts: Hosts, i: number, property: string): Promise<number> {
    const out = await hosts.run(i, `systemctl show -p ${property} --value --timestamp=us+utc consul`);
    const m = /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{6}) UTC/.exec(out);
    if (!m) throw new Error(`host ${i}: no ${property} in '${out}'`);
    return Date.parse(`${m[1]}T${m[2]}.${m[3].slice(0, 3)}Z`);
}

/** When consul.service's current process started on host i, as ms since the epoch (shared clock). */
export function startedAt(hosts: Hosts, i: number): Promise<number> {
    return unitTimestamp(hosts, i, "ExecMainStartTimestamp");
}

/** When consul.service last stopped on host i (for a restart: when the old process was gone). */
export function stoppedAt(hosts: Hosts, i: number): Promise<number> {
    return unitTimestamp(hosts, i, "InactiveEnterTimestamp");
}

/**
 * Asserts that the servers, in the given restart order, went down one at a time: each one's old
 * agent stopped only after the previous one's new agent had started. Returns the restart order.
 */
export async function assertRestartedOneAtATime(hosts: Hosts, servers: readonly number[]): Promise<number[]> {
    const starts = await Promise.all(servers.map((i) => startedAt(hosts, i)));
    const stops = await Promise.all(servers.map((i) => stoppedAt(hosts, i)));
    const order = servers.map((_, k) => k).sort((a, b) => starts[a] - starts[b]);
    for (let n = 1; n < order.length; n++) {
        const [prev, next] = [order[n - 1], order[n]];
        assert.ok(
            stops[next] > starts[prev],
            `host ${servers[next]}'s agent stopped (${new Date(stops[next]).toISOString()}) before host ` +
                `${servers[prev]}'s new agent started (${new Date(starts[prev]).toISOString()}): two servers were down at once`,
        );
    }
    return order.map((k) => servers[k]);
}

/**
 * Elections a server started because it heard no leader in time (hashicorp/raft's follower
 * heartbeat timeout), since `since` (ms). Consul 1.16's Raft has no pre-vote: a server that has
 * just restarted can time out before the leader's backed-off heartbeats reach it, and its higher
 * term makes the leader step down. Each such election can move leadership once more than the
 * rollout's own hand-overs would.
 */
export async function electionsStartedByTimeout(
    hosts: Hosts,
    servers: readonly number[],
    since: number,
): Promise<string[]> {
    const logs = await Promise.all(
        servers.map(async (i) =>
            (await consulLogSince(hosts, i, since))
                .split("\n")
                .filter((l) => l.includes("heartbeat timeout reached, starting election"))
                .map((l) => `host ${i}: ${l.trim()}`),
        ),
    );
    return logs.flat();
}

/**
 * Asserts how a rolling restart handed leadership over, from the server steps' output in rollout
 * order (`addresses` in the same order): after the first server, a leader hands over to a server
 * already updated, and that server is the one that takes over, so leadership moves once (twice if
 * the first server was the leader); each election a restarted server forced allows one more move.
 */
export function assertHandOvers(
    serverOutputs: readonly string[],
    addresses: readonly string[],
    firstWasLeader: boolean,
    elections: number,
): void {
    const handOvers = serverOutputs.flatMap((out, k) => {
        const lines = out.split("\n").map((l) => l.trim());
        const at = lines.findIndex((l) => l.includes("transferring leadership"));
        if (at < 0) return [];
        const to = lines.slice(at).find((l) => l.includes("leadership transferred to"));
        return [{ k, line: lines[at], to: /leadership transferred to (\S+):\d+/.exec(to ?? "")?.[1] }];
    });
    for (const h of handOvers.filter((x) => x.k > 0)) {
        assert.match(h.line, /\(already updated\)/, `server step ${h.k + 1} handed over to a server not yet updated`);
        // A forced election can move leadership again at any moment, even right after a transfer.
        if (elections === 0) {
            assert.ok(
                h.to !== undefined && addresses.slice(0, h.k).includes(h.to),
                `server step ${h.k + 1} named an updated server, but ${h.to ?? "nobody"} took over: ${serverOutputs[h.k]}`,
            );
        }
    }
    const allowed = (firstWasLeader ? 2 : 1) + elections;
    assert.ok(
        handOvers.length <= allowed,
        `leadership handed over ${handOvers.length} times, allowed ${allowed} (${elections} forced elections): ` +
            handOvers.map((h) => `${h.line} → ${h.to ?? "?"}`).join(" | "),
    );
}

/**
 * Asserts the checks of a fresh deploy: a leader, every stack host an alive member, TLS with
 * verify_server_hostname on servers and clients, our gossip key on every member, clients serving
 * auto_encrypt certificates, ACLs denying anonymous reads and writes, KV over verified HTTPS, and
 * the operators' CLI environment. Returns our CA plus the Connect CA roots (what verifies clients).
 */
export async function assertSecureCluster(access: ClusterAccess, gossipKey: string): Promise<string> {
    const { hosts, servers, clients, ca } = access;
    const addr = (i: number) => addressOf(access, i);
    const [first, second, third] = servers;

    const leader = await leaderOf(addr(first), ca);
    assert.match(leader, /:8300$/);
    const all = await members(access);
    assert.deepStrictEqual(
        all.map((m) => [m.Name, m.Status]).sort(),
        [...servers, ...clients].map((i) => [hosts.hosts[i - 1].name, 1]).sort(),
    );

    // Clients' HTTPS certificates come from the Connect CA (auto_encrypt): trust its roots too.
    const roots = await api(addr(first), "/v1/connect/ca/roots?pem=true", asMgmt(access));
    assert.strictEqual(roots.status, 200, roots.body);
    const agentCa = ca + roots.body;

    // verify_server_hostname in force (servers and clients), as the agents report their config.
    for (const i of [first, ...clients.slice(0, 1)]) {
        const self = await api(addr(i), "/v1/agent/self", asMgmt(access, { ca: agentCa }));
        assert.strictEqual(self.status, 200, self.body);
        const debug = (JSON.parse(self.body) as { DebugConfig: { TLS: { InternalRPC: Record<string, unknown> } } })
            .DebugConfig.TLS.InternalRPC;
        assert.strictEqual(debug.VerifyServerHostname, true, `host ${i}: ${JSON.stringify(debug)}`);
        assert.strictEqual(debug.VerifyOutgoing, true);
    }

    // The gossip keyring holds our key, on every member.
    const ring = await api(addr(first), "/v1/operator/keyring", asMgmt(access));
    assert.strictEqual(ring.status, 200, ring.body);
    for (const pool of JSON.parse(ring.body) as { WAN: boolean; Keys: Record<string, number> }[]) {
        assert.deepStrictEqual(Object.keys(pool.Keys), [gossipKey], JSON.stringify(pool));
        if (!pool.WAN) assert.strictEqual(pool.Keys[gossipKey], servers.length + clients.length);
    }

    // Clients serve HTTPS with an auto_encrypt certificate from the Connect CA (not ours).
    for (const i of clients) {
        const cert = await peerCertificate(addr(i), 8501, { rejectUnauthorized: false });
        assert.match(String(cert.subjectaltname), /URI:spiffe:\/\/[^ ,]+\/agent\/client\/dc\/dc1\/id\//);
        assert.doesNotMatch(String(cert.issuer.CN), /Consul Agent CA/);
        const local = await hosts.run(
            i,
            "bash -lc 'curl -sS -f --cacert $CONSUL_CACERT $CONSUL_HTTP_ADDR/v1/status/leader'",
        );
        assert.match(local, /:8300"$/);
    }

    // ACLs: anonymous requests are denied, the management token works.
    const anonymous = await api(addr(first), "/v1/kv/e2e/hello", { ca });
    assert.strictEqual(anonymous.status, 403, anonymous.body);
    const anonymousWrite = await api(addr(first), "/v1/kv/e2e/hello", { ca, method: "PUT", body: "x" });
    assert.strictEqual(anonymousWrite.status, 403, anonymousWrite.body);
    const self = await api(addr(first), "/v1/acl/token/self", asMgmt(access));
    assert.strictEqual(self.status, 200, self.body);

    // KV over HTTPS, verified with our CA (server certificates carry the host IPs).
    const put = await api(addr(second), "/v1/kv/e2e/hello", asMgmt(access, { method: "PUT", body: "world" }));
    assert.strictEqual(put.body.trim(), "true");
    const got = await api(addr(third), "/v1/kv/e2e/hello?raw", asMgmt(access));
    assert.strictEqual(got.body, "world");

    // Seed 002's profile.d environment: `consul members` in a login shell on a server.
    const cli = await hosts.run(first, "bash -lc 'consul members'");
    const alive = cli.split("\n").filter((l) => / alive /.test(l));
    assert.strictEqual(alive.length, servers.length + clients.length, cli);
    // The README's way to hand the CLI a token: on stdin, never in argv where ps shows it.
    const tokenSelf = await hosts.run(
        first,
        "bash -lc 'CONSUL_HTTP_TOKEN_FILE=/dev/stdin consul acl token read -self'",
        { stdin: access.token },
    );
    assert.match(tokenSelf, /global-management/, tokenSelf);
    return agentCa;
}

/**
 * testssl.sh's findings (id → finding) for the TLS listener at `target` (address:port): protocols,
 * server defaults and cipher categories (-p -s -S), the chain checked against `caPem`.
 */
export function testsslFindings(target: string, caPem: string): Map<string, string> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-testssl-"));
    try {
        const caFile = path.join(dir, "ca.pem");
        fs.writeFileSync(caFile, caPem);
        const json = path.join(dir, "findings.json");
        const run = spawnSync(
            "testssl",
            ["--quiet", "--color", "0", "--warnings", "off", "--add-ca", caFile, "-p", "-s", "-S"].concat([
                "--jsonfile",
                json,
                target,
            ]),
            { encoding: "utf8", timeout: 600_000 },
        );
        assert.ok(fs.existsSync(json), `testssl wrote no findings for ${target}: ${run.stdout}${run.stderr}`);
        return new Map(
            (JSON.parse(fs.readFileSync(json, "utf8")) as { id: string; finding: string }[]).map((f) => [
                f.id,
                f.finding,
            ]),
        );
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** The installed testssl.sh's version. */
export function testsslVersion(): string | undefined {
    return (
        spawnSync("testssl", ["--version"], { encoding: "utf8" })
            // --version ignores --color 0: drop its terminal colour codes.
            // eslint-disable-next-line no-control-regex
            .stdout.replace(/\x1b\[[0-9;]*m/g, "")
            .match(/testssl\s+(\d[\d.]*)/)?.[1]
    );
}
