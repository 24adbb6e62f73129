// The gossip-key rotation's host side, run on a fake host (tests/vm/fake-host.ts): the apply
// script's keyring check (a new key alone restarts nothing; a persisted keyring without the key
// gets it first, and the agent restarts) and the keyring script's two phases against a stub curl
// that answers the keyring endpoint as Consul does. The real-host suite (tests/e2e/rotation.e2e.ts)
// remains the word on Consul's keyring protocol.

import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { gossipConfig, renderJson } from "../../components/agent";
import { Settings } from "../../components/config";
import { renderBundle, sha256Hex } from "../../components/vm/bundle";
import { nodeFiles } from "../../components/vm";
import { keyringScript } from "../../components/vm/keyring";
import { applyScript } from "../../components/vm/scripts";
import { FakeHost, Run } from "./fake-host";
import { sampleMaterial, sampleVmSettings } from "./fixtures";
import { applyBase, keyringBase } from "./script-cases";

const newKey = () => crypto.randomBytes(32).toString("base64");

describe("gossip keyring on a fake host", function () {
    this.timeout(60_000);
    const settings = sampleVmSettings();
    const vm = settings.vm as NonNullable<Settings["vm"]>;
    const material = sampleMaterial();
    const managementToken = String(material.managementToken);
    let host: FakeHost;
    beforeEach(() => {
        host = new FakeHost();
    });
    afterEach(() => host.remove());

    const ok = (run: Run) => assert.strictEqual(run.status, 0, run.stderr);
    /** None of these in the output, in any tool's arguments, or in curl's. */
    const noneOf = (run: Run, secrets: readonly string[]) => {
        const seen = [run.stdout, run.stderr, ...run.calls, ...run.requests.flatMap((r) => r.argv)].join("\n");
        for (const s of secrets) assert.ok(!seen.includes(s), "a secret was printed or passed as an argument");
    };
    const write = (file: string, content: string, mode = 0o644) => {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, content, { mode });
    };

    describe("apply: the persisted keyring", () => {
        /** A client's bundle with this gossip key, and its apply script. */
        const client = (gossipKey: string) => {
            const files = nodeFiles(settings, "client", vm.clients[0], vm.servers, { ...material, gossipKey }).map(
                (f) => ({ ...f, path: host.file(f.path) }),
            );
            const bundle = renderBundle(files);
            const script = applyScript(
                {
                    ...applyBase,
                    nodeName: "c1",
                    role: "client",
                    installMode: "preinstalled",
                    serverApiUrls: ["https://10.0.0.11:8501"],
                    waitSeconds: 5,
                    bundleSha256: sha256Hex(bundle),
                },
                host.host,
            );
            return { bundle, script };
        };
        const restarts = (run: Run) => run.calls.filter((c) => /^systemctl (restart|stop|start) /.test(c)).length;
        /** A client installed with `oldKey`, its agent running with this keyring on disk. */
        const installed = (oldKey: string, ring: readonly string[]) => {
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
            host.respond("/v1/connect/ca/roots", "-----BEGIN CERTIFICATE-----\nROOTS\n-----END CERTIFICATE-----\n");
            const first = client(oldKey);
            ok(host.run(first.script, first.bundle));
            write(host.paths.lanKeyring, JSON.stringify(ring, null, 2) + "\n", 0o600);
        };

        it("a new key that the keyring already holds (the install step reached it) changes gossip.json and restarts nothing", () => {
            const [oldKey, key] = [newKey(), newKey()];
            installed(oldKey, [oldKey, key]);
            const ring = fs.readFileSync(host.paths.lanKeyring, "utf8");
            const next = client(key);
            const run = host.run(next.script, next.bundle);
            ok(run);
            assert.ok(run.stdout.includes("c1 compare: 1 changed, action: none\n"), run.stdout);
            assert.strictEqual(restarts(run), 0);
            assert.strictEqual(fs.readFileSync(host.paths.lanKeyring, "utf8"), ring);
            assert.strictEqual(fs.readFileSync(host.paths.gossipConfig, "utf8"), renderJson(gossipConfig(key)));
            noneOf(run, [oldKey, key]);
        });

        it("a keyring without the key (the agent was down through the install) gets it first, keeps the old ones, and the agent restarts", () => {
            const [oldKey, key] = [newKey(), newKey()];
            installed(oldKey, [oldKey]);
            const next = client(key);
            const run = host.run(next.script, next.bundle);
            ok(run);
            assert.match(
                run.stdout,
                /c1 compare: the persisted keyring lacks the configured gossip key: it becomes the primary key, and the agent restarts\nc1 compare: 1 changed, action: restart\n/,
            );
            assert.deepStrictEqual(JSON.parse(fs.readFileSync(host.paths.lanKeyring, "utf8")), [key, oldKey]);
            assert.strictEqual(fs.statSync(host.paths.lanKeyring).mode & 0o777, 0o600);
            assert.ok(run.calls.includes(`chown consul:consul ${host.paths.lanKeyring}.new`), run.calls.join("\n"));
            assert.strictEqual(restarts(run), 1);
            noneOf(run, [oldKey, key]);
        });
    });

    describe("keyring script", () => {
        const AGENT = "https://127.0.0.1:8501";
        const [oldKey, key] = [newKey(), newKey()];
        const script = (phase: "install" | "finish", keyOnStdin = key) =>
            keyringScript({ ...keyringBase, phase, keySha256: sha256Hex(keyOnStdin), waitSeconds: 2 }, host.host);
        /** Consul's keyring answer: each pool's keys with their holders, and the primary. */
        const pools = (keys: Record<string, [number, number]>, primary: string) =>
            JSON.stringify(
                ([true, false] as const).map((wan) => {
                    const n = (k: string) => keys[k][wan ? 0 : 1];
                    return {
                        WAN: wan,
                        Datacenter: "dc1",
                        Segment: "",
                        Messages: {},
                        Keys: Object.fromEntries(Object.keys(keys).map((k) => [k, n(k)])),
                        PrimaryKeys: { [primary]: n(primary) },
                        NumNodes: wan ? 3 : 5,
                    };
                }),
            );
        const FINISHED =
            "s1 keyring-finish: one gossip key, primary on every member (LAN 5 members, WAN 3 members); 1 old key(s) removed\n";
        /** Consul's answers once the new key is used (set "used"), and once the old one is removed ("removed"). */
        const usedThenRemoved = (opts: { token: string }) => {
            host.respond("/v1/operator/keyring", pools({ [oldKey]: [3, 5], [key]: [3, 5] }, key), {
                ...opts,
                set: "used",
            });
            host.respondWith("/v1/operator/keyring", "switch_to removed", { ...opts, method: "DELETE", set: "used" });
            host.respond("/v1/operator/keyring", pools({ [key]: [3, 5] }, key), { ...opts, set: "removed" });
        };
        /** A server with our CA and the management token, its agent answering with a leader. */
        const server = () => {
            write(host.paths.caFile, material.caCertPem);
            write(host.paths.managementTokenFile, managementToken + "\n", 0o600);
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
        };

        it("install on a new cluster: nothing listens, so nothing is sent and the key comes from the config", () => {
            host.respondWith("/v1/status/leader", "exit 7");
            const run = host.run(script("install"), key);
            ok(run);
            assert.strictEqual(
                run.stdout,
                "s1 keyring-install: no Consul server answers yet: a new cluster, which starts with this key\n",
            );
            assert.ok(!run.requests.some((r) => r.method !== "GET"));
        });

        it("install where a server answers but not with a leader and our CA: refuses", () => {
            host.respondWith("/v1/status/leader", "exit 60");
            const run = host.run(script("install"), key);
            assert.strictEqual(run.status, 1);
            assert.match(
                run.stderr,
                /^s1 keyring-install: FAILED: https:\/\/127\.0\.0\.1:8501 answers, but not with a leader and our CA/,
            );
        });

        it("refuses a key on stdin that does not match its digest, before any request", () => {
            const run = host.run(script("install", newKey()), key);
            assert.strictEqual(run.status, 1);
            assert.match(run.stderr, /the gossip key on stdin does not match its digest/);
            assert.deepStrictEqual(run.requests, []);
        });

        it("install: POSTs the key (body, token on stdin), then every member holds it", () => {
            server();
            host.respond("/v1/operator/keyring", pools({ [oldKey]: [3, 5] }, oldKey), { token: managementToken });
            host.respondWith("/v1/operator/keyring", `switch_to installed`, { method: "POST", token: managementToken });
            host.respond("/v1/operator/keyring", pools({ [oldKey]: [3, 5], [key]: [3, 5] }, oldKey), {
                token: managementToken,
                set: "installed",
            });
            const run = host.run(script("install"), key);
            ok(run);
            assert.strictEqual(
                run.stdout,
                "s1 keyring-install: new gossip key installed on every member (LAN 5 members, WAN 3 members); the old one stays primary until the rollout is done\n",
            );
            const post = run.requests.filter((r) => r.method === "POST");
            assert.deepStrictEqual(
                post.map((r) => [r.url, r.body]),
                [[`${AGENT}/v1/operator/keyring`, JSON.stringify({ Key: key })]],
            );
            assert.strictEqual(post[0].config, `header = "X-Consul-Token: ${managementToken}"\n`);
            noneOf(run, [key, oldKey, managementToken]);
        });

        it("install with a member down (Consul answers 500, 'n/m nodes reported success'): goes on, and says so", () => {
            server();
            const partial = "printf '1 error occurred:\\n\\t* WAN error: 2/3 nodes reported success\\n'; exit 22";
            host.respondWith("/v1/operator/keyring", partial, { token: managementToken });
            host.respondWith("/v1/operator/keyring", partial, { method: "POST", token: managementToken });
            const run = host.run(script("install"), key);
            ok(run);
            assert.strictEqual(
                run.stdout,
                "s1 keyring-install: new gossip key installed on the members that answered (1 error occurred: \t* WAN error: 2/3 nodes reported success ); the others get it in their own step\n",
            );
            noneOf(run, [key, oldKey, managementToken]);
        });

        it("finish: makes the key primary, removes the old one, and checks one key on every member", () => {
            server();
            const opts = { token: managementToken };
            host.respond("/v1/operator/keyring", pools({ [oldKey]: [3, 5], [key]: [3, 5] }, oldKey), opts);
            host.respondWith("/v1/operator/keyring", "switch_to used", { ...opts, method: "PUT" });
            usedThenRemoved(opts);
            const run = host.run(script("finish"), key);
            ok(run);
            assert.strictEqual(run.stdout, FINISHED);
            assert.deepStrictEqual(
                run.requests.filter((r) => r.method !== "GET").map((r) => [r.method, r.body]),
                [
                    ["PUT", JSON.stringify({ Key: key })],
                    ["DELETE", JSON.stringify({ Key: oldKey })],
                ],
            );
            noneOf(run, [key, oldKey, managementToken]);
        });

        it("finish: a member that does not answer the use ('4/5 nodes reported success', as in a scale-up) is asked again", () => {
            server();
            const opts = { token: managementToken };
            const partial = "printf '1 error occurred:\\n\\t* dc1 (LAN) error: 4/5 nodes reported success\\n'; exit 22";
            host.respond("/v1/operator/keyring", pools({ [oldKey]: [3, 5], [key]: [3, 5] }, oldKey), opts);
            host.respondWith("/v1/operator/keyring", `switch_to answered; ${partial}`, { ...opts, method: "PUT" });
            host.respondWith("/v1/operator/keyring", "switch_to used", { ...opts, method: "PUT", set: "answered" });
            usedThenRemoved(opts);
            const run = host.run(script("finish"), key);
            ok(run);
            assert.strictEqual(run.stdout, FINISHED);
            assert.deepStrictEqual(
                run.requests.filter((r) => r.method !== "GET").map((r) => r.method),
                ["PUT", "PUT", "DELETE"],
            );
            noneOf(run, [key, oldKey, managementToken]);
        });

        it("finish: a member that never answers the use fails at the deadline, with Consul's answer", () => {
            server();
            const opts = { token: managementToken };
            host.respond("/v1/operator/keyring", pools({ [oldKey]: [3, 5], [key]: [3, 5] }, oldKey), opts);
            host.respondWith(
                "/v1/operator/keyring",
                "printf '1 error occurred:\\n\\t* dc1 (LAN) error: 4/5 nodes reported success\\n'; exit 22",
                { ...opts, method: "PUT" },
            );
            const run = host.run(script("finish"), key);
            assert.strictEqual(run.status, 1);
            assert.match(
                run.stderr,
                /^s1 keyring-finish: FAILED: consul could not make the new gossip key primary through https:\/\/127\.0\.0\.1:8501 \(HTTP \d+\): 1 error occurred: \t\* dc1 \(LAN\) error: 4\/5 nodes reported success *\n$/,
            );
            assert.ok(run.requests.filter((r) => r.method === "PUT").length >= 2, "it did not ask again");
            assert.ok(!run.requests.some((r) => r.method === "DELETE"), "it went on to remove");
            noneOf(run, [key, oldKey, managementToken]);
        });

        it("finish: a member without the key even after a second install fails, naming the pool and the count", () => {
            server();
            const opts = { token: managementToken };
            host.respond("/v1/operator/keyring", pools({ [oldKey]: [3, 5], [key]: [3, 4] }, oldKey), opts);
            host.respond("/v1/operator/keyring", "[]", { ...opts, method: "POST" });
            const run = host.run(script("finish"), key);
            assert.strictEqual(run.status, 1);
            assert.strictEqual(
                run.stderr,
                "s1 keyring-finish: FAILED: the gossip key is not on every member: LAN: 4 of 5 members; check consul members, then re-run pulumi up\n",
            );
            assert.ok(
                !run.requests.some((r) => r.method === "PUT" || r.method === "DELETE"),
                "it went on to use/remove",
            );
            noneOf(run, [key, oldKey, managementToken]);
        });
    });
});
