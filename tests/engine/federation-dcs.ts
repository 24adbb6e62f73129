// The two datacenters of the federation suite (./federation.e2e.ts) as the test reaches them: the
// host layout, the primary's outputs, the calls each scenario makes, and the two WAN scenarios
// (TLS on the WAN, a cut WAN link), which are long enough to live here.

import * as assert from "assert";
import { api, ApiOptions, ApiResponse, Figures, Hosts, sleep, waitFor } from "../e2e/infra";
import * as fed from "./federation-support";
import { nameOf, Update } from "./pulumi-cli";
import type { FederationExport } from "../../components/federation/material";

export const DC1_SERVERS = [1, 2, 3];
export const DC1_CLIENT = 4;
export const DC2_SERVER = 5;
export const DC2_CLIENT = 6;
/** The KV policy of the tokens the test makes in dc1. */
export const POLICY = "fed-e2e-kv";

export function seconds(ms: number): string {
    return (ms / 1000).toFixed(1);
}

export class TwoDatacenters {
    federation!: FederationExport;
    /** dc1's root CA, management token, gossip key (stack outputs) and root CA private key (state). */
    ca = "";
    token = "";
    gossipKey = "";
    rootKey = "";
    /** A token made in dc1 with the KV policy, once replication ran (scenario 4). */
    fedToken = "";
    readonly record = new fed.OutputRecord();

    constructor(
        readonly hosts: Hosts,
        readonly figures: Figures,
    ) {}

    addr(i: number): string {
        return this.hosts.hosts[i - 1].address;
    }

    nodeName(i: number): string {
        return this.hosts.hosts[i - 1].name;
    }

    /** The servers' WAN member names, sorted. */
    wanNames(): string[] {
        return [...DC1_SERVERS.map((i) => `${this.nodeName(i)}.dc1`), `${this.nodeName(DC2_SERVER)}.dc2`].sort();
    }

    mgmt(extra: Partial<ApiOptions> = {}): ApiOptions {
        return { ca: this.ca, token: this.token, ...extra };
    }

    succeeded(update: Update, what: string): Update {
        this.record.update(what, update);
        assert.strictEqual(update.code, 0, `${what} failed:\n${update.output.slice(-6000)}`);
        return update;
    }

    /** Non-"same" steps of an update, as "<op> <name>". */
    changed(update: Update): string[] {
        return update.steps
            .filter((s) => s.op !== "same" && !s.type.startsWith("pulumi:"))
            .map((s) => `${s.op} ${nameOf(s.urn)}`)
            .sort();
    }

    /** dc1 (server 1) asked for dc2's catalog: true once dc2's server node is in its answer. */
    async dc2Answers(): Promise<boolean> {
        const r = await api(this.addr(1), "/v1/catalog/nodes?dc=dc2", this.mgmt({ timeoutMs: 30_000 }));
        const server = this.nodeName(DC2_SERVER);
        return r.status === 200 && (JSON.parse(r.body) as { Node: string }[]).some((n) => n.Node === server);
    }

    /**
     * Runs `run` (dc2's pulumi up) while asking dc1 for dc2's catalog every 500 ms from its start;
     * returns its result and how long after the start dc1 first answered (waited for up to 2 min).
     */
    async untilDc2Answers<T>(run: () => Promise<T>): Promise<{ result: T; answeredAfterMs: number }> {
        const t0 = Date.now();
        let answeredAt = 0;
        let polling = true;
        const poll = (async () => {
            while (polling && answeredAt === 0) {
                if (await this.dc2Answers().catch(() => false)) answeredAt = Date.now();
                else await sleep(500);
            }
        })();
        try {
            const result = await run();
            await waitFor("dc1 to answer ?dc=dc2", () => Promise.resolve(answeredAt > 0), 120_000, 500);
            return { result, answeredAfterMs: answeredAt - t0 };
        } finally {
            polling = false;
            await poll;
        }
    }

    /** SSH logins each host's sshd has accepted so far (counted in its journal; the reading is one). */
    sshLogins(): Promise<number[]> {
        return Promise.all(
            this.hosts.hosts.map(async (_, k) =>
                parseInt(
                    await this.hosts.run(
                        k + 1,
                        "journalctl -u ssh.service -o cat --no-pager | grep -c 'Accepted publickey' || true",
                    ),
                    10,
                ),
            ),
        );
    }

    /** Waits until dc1's ?dc=dc2 request fails for `reason`; returns that answer (status and body). */
    async dc2Refused(reason: RegExp, timeoutMs = 120_000): Promise<string> {
        let last = "";
        await waitFor(
            `dc1's ?dc=dc2 to fail with ${String(reason)}`,
            async () => {
                const r = await api(this.addr(1), "/v1/kv/fed/from-dc2?dc=dc2", this.mgmt({ timeoutMs: 60_000 })).catch(
                    (e: Error): ApiResponse => ({ status: 0, body: e.message }),
                );
                last = `${r.status} ${r.body.trim()}`;
                return r.status !== 200 && reason.test(r.body);
            },
            timeoutMs,
            1000,
        ).catch((e: Error) => assert.fail(`${e.message}; the last answer: ${last}`));
        return last;
    }

    /** A member's WAN status (1 alive, 3 left, 4 failed; 0 absent) as dc1's server 1 sees it. */
    async wanStatus(i: number, dc: string): Promise<number> {
        return fed.statusOf(await fed.wanMembers(this.addr(1), this.mgmt()), `${this.nodeName(i)}.${dc}`);
    }

    /** Polls dc2's server's status in dc1's WAN pool until it is `expected`; fails with the last one. */
    async waitDc2WanStatus(what: string, expected: number, ms: number): Promise<number> {
        let status = 0;
        await waitFor(
            what,
            async () => (status = await this.wanStatus(DC2_SERVER, "dc2")) === expected,
            ms,
            1000,
        ).catch((e: Error) => assert.fail(`${e.message}: status ${status}`));
        return status;
    }

    /** Whether dc1's WAN pool holds exactly the 4 servers, all alive. */
    async wanAllAlive(): Promise<boolean> {
        const all = await fed.wanMembers(this.addr(1), this.mgmt());
        return all.length === 4 && all.every((m) => m.Status === 1);
    }

    async kvPut(i: number, key: string, value: string, opts: ApiOptions): Promise<void> {
        const r = await api(this.addr(i), `/v1/kv/${key}`, { ...opts, method: "PUT", body: value });
        assert.strictEqual(`${r.status} ${r.body.trim()}`, "200 true", `PUT ${key} at host ${i}`);
    }

    kvGet(i: number, key: string, opts: ApiOptions): Promise<ApiResponse> {
        return api(this.addr(i), `/v1/kv/${key}${key.includes("?") ? "&" : "?"}raw`, opts);
    }

    /** A KV write in dc2 with `token`, waited for (up to `timeoutMs`) until it is allowed. */
    async dc2WriteWith(token: string, key: string, timeoutMs: number): Promise<void> {
        let put: ApiResponse = { status: 0, body: "" };
        await waitFor(
            `a KV write in dc2 with a token made in dc1 (${key})`,
            async () => {
                put = await api(this.addr(DC2_SERVER), `/v1/kv/${key}`, {
                    ca: this.ca,
                    token,
                    method: "PUT",
                    body: "x",
                });
                return put.status === 200;
            },
            timeoutMs,
            500,
        ).catch((e: Error) => assert.fail(`${e.message}; the last answer: ${put.status} ${put.body}`));
        assert.strictEqual(put.body.trim(), "true");
    }

    /** The gossip key, the replication and management tokens, each line of the root and intermediate keys. */
    secrets(): [string, string][] {
        const lines = (what: string, pem: string) =>
            fed.keyLines(pem).map((l, n): [string, string] => [`line ${n + 1} of ${what}`, l]);
        return [
            ["gossip key", this.gossipKey],
            ["replication token", this.federation.replicationToken],
            ["management token", this.token],
            ...lines("dc1's root CA key", this.rootKey),
            ...lines("dc2's intermediate CA key", this.federation.intermediates.dc2.keyPem),
        ];
    }
}

/**
 * Scenario 6: dc2's server with a certificate from another CA, then with one for dc3 signed by dc2's
 * own intermediate: dc1's RPC to it fails with the x509 error each time; its own back, it works.
 */
export async function wanTls(dcs: TwoDatacenters): Promise<void> {
    const ips = [dcs.addr(DC2_SERVER), "127.0.0.1"];
    const names = (dc: string) => [`server.${dc}.${dcs.federation.domain}`, "localhost"];
    try {
        await fed.installServerCert(dcs.hosts, DC2_SERVER, fed.serverCertificate(names("dc2"), ips));
        const unknown = await dcs.dc2Refused(/x509: certificate signed by unknown authority/);
        // WAN gossip is keyed by the gossip key, not TLS: the server is still a live WAN member.
        const wan = await dcs.waitDc2WanStatus("dc2's server alive in the WAN pool", 1, 60_000);
        dcs.figures.add(`6. another CA: dc1's ?dc=dc2 answers ${unknown}; dc2's server's WAN status ${wan}`);
        const wrongDc = fed.serverCertificate(names("dc3"), ips, dcs.federation.intermediates.dc2);
        await fed.installServerCert(dcs.hosts, DC2_SERVER, wrongDc);
        const domain = dcs.federation.domain;
        const hostname = await dcs.dc2Refused(
            new RegExp(`x509: certificate is valid for .*server\\.dc3\\.${domain}.*, not server\\.dc2\\.${domain}`),
        );
        dcs.figures.add(`6. our CA, server.dc3: dc1's ?dc=dc2 answers ${hostname}`);
    } finally {
        await fed.restoreServerCert(dcs.hosts, DC2_SERVER);
    }
    await waitFor("dc1's ?dc=dc2 to work again", () => dcs.dc2Answers(), 120_000, 1000);
}

/**
 * Scenario 7: blackhole routes on dc2's server to each dc1 server (its answers and its own packets
 * go nowhere: both directions cut). Each datacenter serves its own KV, dc2 on a token replicated
 * before; dc1's ?dc=dc2 fails; dc2's replication records an error; a token made in dc1 meanwhile is
 * unknown in dc2. Routes back: the WAN pool heals and that token works in dc2.
 */
export async function wanCut(dcs: TwoDatacenters): Promise<void> {
    const blackhole = (op: string) => DC1_SERVERS.map((i) => `ip route ${op} blackhole ${dcs.addr(i)}/32`).join(" && ");
    const replicated = { ca: dcs.ca, token: dcs.fedToken };
    let cutToken = "";
    let status: fed.ReplicationStatus | undefined;
    await waitFor(
        "dc2's replication to have succeeded last",
        async () => {
            status = await fed.replicationStatus(dcs.addr(DC2_SERVER), dcs.mgmt());
            return status.Running && Date.parse(status.LastSuccess) > Math.max(0, Date.parse(status.LastError));
        },
        180_000,
        1000,
    ).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(status)}`));
    await dcs.hosts.run(DC2_SERVER, blackhole("add"));
    try {
        const wan = await dcs.waitDc2WanStatus("dc1 to see dc2's server failed", 4, 180_000);
        // dc2's server still gets dc1's packets, but its answers go nowhere: dc1's dial times out
        // (after "stream closed" on the pooled connection), until dc1's router has found no dc2
        // server answering and says so at once.
        const dc2Rpc = `${dcs.addr(DC2_SERVER).replace(/\./g, "\\.")}:8300`;
        const refused = await dcs.dc2Refused(
            new RegExp(`dial tcp \\S+->${dc2Rpc}: i/o timeout|Remote DC has no server currently reachable`),
        );
        await dcs.kvPut(1, "fed/during-cut-dc1", "dc1 alone", dcs.mgmt());
        assert.strictEqual((await dcs.kvGet(3, "fed/during-cut-dc1", dcs.mgmt())).body, "dc1 alone");
        await dcs.kvPut(DC2_SERVER, "fed/during-cut-dc2", "dc2 alone", replicated);
        assert.strictEqual((await dcs.kvGet(DC2_SERVER, "fed/during-cut-dc2", replicated)).body, "dc2 alone");
        await waitFor(
            "dc2's replication to record an error after its last success",
            async () => {
                status = await fed.replicationStatus(dcs.addr(DC2_SERVER), dcs.mgmt());
                return Date.parse(status.LastError) > Date.parse(status.LastSuccess);
            },
            180_000,
            1000,
        ).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(status)}`));
        assert.ok(status);
        assert.strictEqual(status.Enabled, true);
        // Its own packets to dc1 hit the blackhole route at once (connect: invalid argument), until its
        // router has no dc1 server left to try. A call that waited on another's dial to the same server
        // (Consul's connection pool) gets that dial's failure as "lead thread didn't get connection".
        assert.match(
            status.LastErrorMessage ?? "",
            /^failed to retrieve remote ACL \w+: .*(connect: invalid argument|Remote DC has no server currently reachable|lead thread didn't get connection)/,
        );
        // A token made in dc1 now is not in dc2 until the link is back.
        cutToken = await fed.createToken(dcs.addr(1), dcs.mgmt(), POLICY, "federation e2e: made during the cut");
        const unknown = await api(dcs.addr(DC2_SERVER), "/v1/kv/fed/cut", {
            ...replicated,
            token: cutToken,
            method: "PUT",
            body: "x",
        });
        assert.strictEqual(`${unknown.status} ${unknown.body.trim()}`, `403 ${fed.UNKNOWN_TOKEN_IN_SECONDARY}`);
        dcs.figures.add(
            `7. cut: dc2's server's WAN status ${wan}; dc1's ?dc=dc2 answers ${refused}; dc2's replication ` +
                `Running ${status.Running}, LastError ${status.LastError} after LastSuccess ${status.LastSuccess}: ${status.LastErrorMessage ?? "(no message)"}`,
        );
    } finally {
        await dcs.hosts.run(DC2_SERVER, blackhole("del"));
    }
    const restoredAt = Date.now();
    await waitFor("dc1's WAN pool to hold the 4 servers alive again", () => dcs.wanAllAlive(), 300_000, 1000);
    const healed = Date.now() - restoredAt;
    await dcs.dc2WriteWith(cutToken, "fed/cut", 300_000);
    assert.ok(await dcs.dc2Answers(), "dc1 does not answer ?dc=dc2 after the cut");
    dcs.figures.add(
        `7. link restored: WAN pool healed in ${seconds(healed)} s; the cut's token works in dc2 after ${seconds(Date.now() - restoredAt)} s`,
    );
}
