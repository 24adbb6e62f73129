// DNS discovery on real hosts under aclDefaultPolicy deny (3 servers, 2 clients, deployed by the
// program's own commands under replay, ./replay.ts), as seed 002 uses it: an app on a client asks
// the local agent (port 8600, or through systemd-resolved) for web.service.consul. Without
// dnsDefaultToken the agent answers NXDOMAIN (the catalog is filtered by ACLs); with it, the address
// of the client that registered web. What the default token opens on the clients' HTTP API (the
// catalog, nothing else) and that the servers keep everything closed, are checked too.

import * as assert from "assert";
import { mainPid, vmStackConfig } from "./checks";
import { Artifacts, ensureArtifacts, Figures, Hosts, log, Mirror, requirePrerequisites } from "./infra";
import { assertNoFailures, Deployed, deployReplay, ReplayMocks } from "./replay";

const SERVERS = [1, 2, 3];
const CLIENTS = [4, 5];
/** web is registered on WEB_HOST and looked up from ASKER. */
const WEB_HOST = 4;
const ASKER = 5;
/** Every answer of an agent under deny says so; token-less list reads are filtered, not refused. */
const DENY = /^x-consul-default-acl-policy: deny\r?$/im;

const figures = new Figures();

interface Http {
    readonly status: number;
    readonly headers: string;
    readonly body: string;
}

describe("DNS on real hosts under ACL deny: the DNS token as the clients' default token, and systemd-resolved", function () {
    this.timeout(30 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror | undefined;
    let state: ReplayMocks | undefined;
    let managementToken = "";
    const addr = (i: number) => hosts.hosts[i - 1].address;

    async function deploy(dns: Record<string, string>): Promise<Deployed> {
        const release = { mirrorUrl: mirror?.url ?? "", consulVersion: artifacts.consulVersion };
        const config = vmStackConfig(hosts, { servers: SERVERS, clients: CLIENTS }, release, dns);
        const d = await deployReplay(state, config);
        state = d.mocks;
        log(
            `deploy: ${d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ") || "none"}; ${d.failures.length} failure(s)`,
        );
        return d;
    }

    /**
     * An HTTPS request from host i to its own agent, as an app there would make it (the token, if
     * any, on curl's stdin, never in argv). Clients serve an auto_encrypt certificate: agent-ca.pem.
     */
    async function http(i: number, path: string, opts: { token?: string; method?: string; body?: string } = {}) {
        const ca = CLIENTS.includes(i) ? "/etc/consul.d/tls/agent-ca.pem" : "/etc/consul.d/tls/ca.pem";
        const data = opts.body === undefined ? "" : ` --data-binary '${opts.body.replace(/'/g, "'\\''")}'`;
        const r = await hosts.run(
            i,
            `curl -sS -i --max-time 10 --cacert ${ca} --config - -X ${opts.method ?? "GET"}${data} https://127.0.0.1:8501${path}`,
            { stdin: opts.token ? `header = "X-Consul-Token: ${opts.token}"\n` : "" },
        );
        const split = r.indexOf("\r\n\r\n");
        const headers = r.slice(0, split);
        return { status: Number(/^HTTP\/\S+ (\d+)/.exec(headers)?.[1]), headers, body: r.slice(split + 4) } as Http;
    }

    /** dig's status and answer section for a name, asked of the agent on host i. */
    async function dig(i: number, name: string): Promise<{ status: string; answers: string[] }> {
        const out = await hosts.run(i, `dig @127.0.0.1 -p 8600 +time=3 +tries=1 +noall +comments +answer ${name} A`);
        const status = /status: ([A-Z]+)/.exec(out)?.[1] ?? `no status in: ${out}`;
        const answers = out.split("\n").filter((l) => l.trim() !== "" && !l.startsWith(";"));
        return { status, answers };
    }

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        hosts = await Hosts.up(SERVERS.length + CLIENTS.length);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
    });

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        figures.print();
    });

    it("a. without dnsDefaultToken (what the project did so far): web is in the catalog, DNS on a client answers NXDOMAIN", async () => {
        const d = await deploy({});
        assertNoFailures(d.failures);
        managementToken = String(d.outputs.aclManagementToken);
        // A token that may register web (as the app's deploy would have), then web on WEB_HOST.
        const policy = await http(1, "/v1/acl/policy", {
            token: managementToken,
            method: "PUT",
            body: JSON.stringify({ Name: "web", Rules: JSON.stringify({ service: { web: { policy: "write" } } }) }),
        });
        assert.strictEqual(policy.status, 200, policy.body);
        const token = await http(1, "/v1/acl/token", {
            token: managementToken,
            method: "PUT",
            body: JSON.stringify({ Policies: [{ Name: "web" }] }),
        });
        assert.strictEqual(token.status, 200, token.body);
        const webToken = (JSON.parse(token.body) as { SecretID: string }).SecretID;
        const reg = await http(WEB_HOST, "/v1/agent/service/register", {
            token: webToken,
            method: "PUT",
            body: JSON.stringify({ Name: "web", Port: 8080 }),
        });
        assert.strictEqual(reg.status, 200, reg.body);
        const seen = await http(ASKER, "/v1/catalog/service/web", { token: managementToken });
        assert.match(seen.body, /"ServiceName":"web"/);
        assert.match(seen.body, new RegExp(`"Address":"${addr(WEB_HOST)}"`));

        const started = Date.now();
        const consul = await dig(ASKER, "consul.service.consul");
        const web = await dig(ASKER, "web.service.consul");
        assert.deepStrictEqual(consul, { status: "NXDOMAIN", answers: [] });
        assert.deepStrictEqual(web, { status: "NXDOMAIN", answers: [] });
        // The reason: the agent asks the catalog as anonymous, which sees nothing under deny (1.16
        // sets X-Consul-Results-Filtered-By-ACLs for other tokens only, so only the difference shows).
        const anon = await http(ASKER, "/v1/catalog/service/web");
        assert.strictEqual(anon.status, 200);
        assert.strictEqual(anon.body.trim(), "[]");
        assert.match(anon.headers, DENY);
        const agentLog = await hosts.run(
            ASKER,
            `journalctl -u consul --no-pager -o cat --since @${Math.floor(started / 1000) - 1}`,
        );
        const dnsLines = agentLog.split("\n").filter((l) => /dns|acl/i.test(l));
        figures.add(
            `a. no DNS token (deny): dig consul.service.consul and web.service.consul on a client: NXDOMAIN, 0 answers; ` +
                `token-less /v1/catalog/service/web there: 200 [] (with the management token: web listed); agent log lines on dns/acl meanwhile: ${dnsLines.length}${dnsLines.length ? ` (${dnsLines[0]})` : ""}`,
        );
    });

    it("b. dnsForwarder on a host whose resolver is not systemd-resolved: the DNS token is made, then each client refuses before any change", async () => {
        const before = await Promise.all(CLIENTS.map((i) => hosts.run(i, "sha256sum /etc/consul.d/secrets.json")));
        const d = await deploy({ dnsDefaultToken: "true", dnsForwarder: "systemd-resolved" });
        assert.ok(d.failures.length > 0, "the deploy should have failed on the clients");
        // Before the clients: the DNS token's file on the servers and its policy and token in Consul.
        const acl = d.mocks.runs.filter((r) => r.name.endsWith("-dns-acl"));
        assert.strictEqual(acl.length, 1, "one DNS ACL step");
        assert.match(acl[0].stdout, /policy consul-dns created\n.*dns token created/);
        for (const f of d.failures) {
            assert.match(f.message, /does not use its stub \(nameserver 127\.0\.0\.53\).*nothing was changed/);
        }
        const after = await Promise.all(CLIENTS.map((i) => hosts.run(i, "sha256sum /etc/consul.d/secrets.json")));
        assert.deepStrictEqual(after, before);
        for (const i of CLIENTS)
            assert.strictEqual(
                (await hosts.exec(i, "test -e /etc/systemd/resolved.conf.d/consul-pulumi.conf")).code,
                1,
            );
        figures.add(
            `b. forwarder on a host not using systemd-resolved: ${d.failures.length} client(s) refused before any change`,
        );
    });

    it("c. dnsDefaultToken and the forwarder: dig and getent on the other client return web's address", async () => {
        // What an operator's host with systemd-resolved as its resolver looks like.
        for (const i of CLIENTS) await hosts.run(i, "ln -sf /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf");
        const d = await deploy({ dnsDefaultToken: "true", dnsForwarder: "systemd-resolved" });
        assertNoFailures(d.failures);
        // The servers and the DNS ACL step are done (b); the clients, refused then, are all that runs.
        assert.deepStrictEqual(
            d.mocks.runs.map((r) => r.name.replace(/^.*-(client-)/, "$1")).sort(),
            CLIENTS.map((i) => `client-${hosts.hosts[i - 1].name}-agent`),
        );
        for (const i of SERVERS) {
            assert.strictEqual(
                (await hosts.run(i, "stat -c '%a %U:%G' /etc/consul.d/tokens/dns")).trim(),
                "600 root:root",
            );
            assert.strictEqual(
                (await hosts.run(i, "grep -c '\"default\"' /etc/consul.d/secrets.json || true")).trim(),
                "0",
            );
        }
        for (const i of CLIENTS) {
            assert.strictEqual(
                (await hosts.run(i, "stat -c '%a %U:%G' /etc/consul.d/secrets.json")).trim(),
                "640 root:consul",
            );
            assert.strictEqual((await hosts.run(i, "grep -c '\"default\"' /etc/consul.d/secrets.json")).trim(), "1");
            assert.strictEqual(
                (await hosts.exec(i, "test -e /etc/consul.d/tokens/dns")).code,
                1,
                "a client holds the token file",
            );
        }
        const web = await dig(ASKER, "web.service.consul");
        assert.strictEqual(web.status, "NOERROR");
        assert.deepStrictEqual(
            web.answers.map((l) => l.split(/\s+/).pop()),
            [addr(WEB_HOST)],
        );
        const getent = await hosts.exec(ASKER, "getent hosts web.service.consul");
        assert.strictEqual(getent.code, 0, getent.stderr);
        assert.strictEqual(getent.stdout.trim().split(/\s+/)[0], addr(WEB_HOST));
        assert.match(getent.stdout, /web\.service\.consul/);
        figures.add(
            `c. with the DNS token: dig web.service.consul on ${hosts.hosts[ASKER - 1].name}: ${web.answers.join(" | ")}; getent: ${getent.stdout.trim()}`,
        );
    });

    it("d. what a token-less HTTP request reads: the catalog on a client; not KV nor ACLs there; nothing on a server", async () => {
        const catalog = await http(ASKER, "/v1/catalog/service/web");
        assert.strictEqual(catalog.status, 200);
        assert.match(catalog.body, /"ServiceName":"web"/);
        const kv = await http(ASKER, "/v1/kv/app/config");
        assert.strictEqual(kv.status, 403, kv.body);
        assert.match(kv.body, /Permission denied.*lacks permission 'key:read' on "app\/config"/);
        // The request was judged as the DNS token: 1.16's fallback for token-less HTTP (agent/http.go).
        const dnsSecret = (await hosts.run(1, "cat /etc/consul.d/tokens/dns")).trim();
        const self = await http(1, "/v1/acl/token/self", { token: dnsSecret });
        assert.strictEqual(self.status, 200, self.body);
        const accessor = (JSON.parse(self.body) as { AccessorID: string }).AccessorID;
        assert.ok(kv.body.includes(`token with AccessorID '${accessor}'`), kv.body);
        const tokens = await http(ASKER, "/v1/acl/tokens");
        assert.strictEqual(tokens.status, 403, tokens.body);
        assert.match(tokens.body, /Permission denied.*lacks permission 'acl:read'/);
        const server = await http(1, "/v1/catalog/service/web");
        assert.strictEqual(server.status, 200);
        assert.strictEqual(server.body.trim(), "[]");
        assert.match(server.headers, DENY);
        const serverDns = await dig(1, "web.service.consul");
        assert.deepStrictEqual(serverDns, { status: "NXDOMAIN", answers: [] });
        figures.add(
            `d. token-less HTTP on a client: catalog 200 (web listed); /v1/kv 403 "${kv.body.trim()}"; /v1/acl/tokens 403 "${tokens.body.trim()}"; on a server: catalog 200 [] (anonymous sees nothing), DNS NXDOMAIN`,
        );
    });

    it("e. a re-deploy with nothing changed: 0 SSH sessions", async () => {
        const d = await deploy({ dnsDefaultToken: "true", dnsForwarder: "systemd-resolved" });
        assertNoFailures(d.failures);
        assert.deepStrictEqual(
            d.mocks.runs.map((r) => r.name),
            [],
        );
        figures.add(`e. no-change re-deploy with DNS on: ${d.mocks.runs.length} SSH sessions`);
    });

    it("f. dnsForwarder back to none: the drop-in goes, getent stops resolving, consul is not restarted, dig still answers", async () => {
        const pids = await Promise.all(CLIENTS.map((i) => mainPid(hosts, i)));
        const d = await deploy({ dnsDefaultToken: "true" });
        assertNoFailures(d.failures);
        assert.deepStrictEqual(
            d.mocks.runs.map((r) => r.name.replace(/^.*-(client-)/, "$1")).sort(),
            CLIENTS.map((i) => `client-${hosts.hosts[i - 1].name}-agent`),
        );
        assert.deepStrictEqual(await Promise.all(CLIENTS.map((i) => mainPid(hosts, i))), pids);
        for (const i of CLIENTS)
            assert.strictEqual(
                (await hosts.exec(i, "test -e /etc/systemd/resolved.conf.d/consul-pulumi.conf")).code,
                1,
            );
        const getent = await hosts.exec(ASKER, "getent hosts web.service.consul");
        assert.strictEqual(getent.code, 2, `getent still resolves: ${getent.stdout}`);
        const web = await dig(ASKER, "web.service.consul");
        assert.deepStrictEqual(
            web.answers.map((l) => l.split(/\s+/).pop()),
            [addr(WEB_HOST)],
        );
        figures.add(
            `f. forwarder off: ${d.mocks.runs.length} SSH sessions (the clients), consul PIDs unchanged, getent exit ${getent.code}`,
        );
    });
});
