import * as assert from "assert";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Host, Settings } from "../../components/config";
import { NodeFile } from "../../components/vm/bundle";
import { PATHS } from "../../components/vm/paths";
import { hostCliEnvironment, nodeFiles, planRollout, renderProfile } from "../../components/vm";
import { COMMAND_TYPE, diffCommands, sessionsPerHost } from "../command-diff";
import { generatedSecrets, TYPES } from "../../policy/rules";
import {
    AEAD_SUITES,
    exampleHostKey,
    parseBundle,
    prodStackWithHosts,
    sampleMaterial,
    sampleVmSettings,
    withPinnedKeys,
} from "./fixtures";
import {
    ConsulMocks,
    containsSecret,
    EvaluatedStack,
    evaluateProgram,
    RecordedResource,
    stackFileConfig,
    withOperatorHome,
} from "../mocks";

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

function host(name: string, address: string): Host {
    return { name, address, addressIsIp: true, sshPort: 22 };
}

const servers3 = [host("s1", "10.0.0.11"), host("s2", "10.0.0.12"), host("s3", "10.0.0.13")];
/** The commands that run once for the cluster, on the first server, rather than once per host. */
const CLUSTER_STEPS = [
    "consul-vm-acl",
    "consul-vm-metrics-acl",
    "consul-vm-keyring-install",
    "consul-vm-keyring-finish",
];
const clients = (n: number) => Array.from({ length: n }, (_, i) => host(`c${i + 1}`, `10.0.1.${i + 1}`));

/** Strings in an input that are NOT under a secret wrapper. */
function plainStrings(raw: unknown, out: string[] = []): string[] {
    if (typeof raw === "string") out.push(raw);
    else if (Array.isArray(raw)) raw.forEach((v) => plainStrings(v, out));
    else if (raw !== null && typeof raw === "object") {
        if (SECRET_SIG in raw) return out;
        Object.values(raw).forEach((v) => plainStrings(v, out));
    }
    return out;
}

describe("VM rollout plan", () => {
    it("installs the gossip key, touches servers one at a time, then ACLs on the first server, then clients in batches, then settles the keyring", () => {
        const plan = planRollout(servers3, clients(7), 3, true);
        assert.deepStrictEqual(
            plan.map((s) => [s.id, s.after]),
            [
                ["keyring-install", []],
                ["server-s1", ["keyring-install"]],
                ["server-s2", ["server-s1"]],
                ["server-s3", ["server-s2"]],
                ["acl", ["server-s3"]],
                ["client-c1", ["acl"]],
                ["client-c2", ["acl"]],
                ["client-c3", ["acl"]],
                ["client-c4", ["client-c1", "client-c2", "client-c3"]],
                ["client-c5", ["client-c1", "client-c2", "client-c3"]],
                ["client-c6", ["client-c1", "client-c2", "client-c3"]],
                ["client-c7", ["client-c4", "client-c5", "client-c6"]],
                ["keyring-finish", ["client-c7"]],
            ],
        );
        for (const id of ["acl", "keyring-install", "keyring-finish"]) {
            assert.strictEqual(plan.find((s) => s.id === id)?.host.name, "s1", id);
        }
        assert.deepStrictEqual(
            plan.filter((s) => s.isLastServer).map((s) => s.id),
            ["server-s3"],
        );
    });

    it("handles 1 server, no ACLs and no clients", () => {
        const plan = planRollout([servers3[0]], [], 5, false);
        assert.deepStrictEqual(
            plan.map((s) => [s.id, s.after, s.isLastServer]),
            [
                ["keyring-install", [], undefined],
                ["server-s1", ["keyring-install"], true],
                ["keyring-finish", ["server-s1"], undefined],
            ],
        );
        assert.throws(() => planRollout([], [], 5, true), /at least one server/);
    });

    it("50 clients in batches of 5 make 10 waves after the servers", () => {
        const plan = planRollout(servers3, clients(50), 5, true);
        const batches = new Set(plan.filter((s) => s.kind === "client").map((s) => s.batch));
        assert.strictEqual(batches.size, 10);
        for (const step of plan.filter((s) => s.kind === "client" && (s.batch ?? 0) > 0)) {
            assert.strictEqual(step.after.length, 5);
        }
    });
});

describe("VM host files", () => {
    const settings = sampleVmSettings();
    const material = sampleMaterial();
    const vm = settings.vm as NonNullable<Settings["vm"]>;
    const server = nodeFiles(settings, "server", vm.servers[0], vm.servers, material);
    const client = nodeFiles(settings, "client", vm.clients[0], vm.servers, material);
    const byPath = (files: NodeFile[]) => Object.fromEntries(files.map((f) => [f.path, f]));

    it("gives a server its config, secret fragment, TLS files, CLI cert, tokens, profile and unit", () => {
        assert.deepStrictEqual(
            server.map((f) => `${f.path} ${f.mode} ${f.owner}:${f.group}`).sort(),
            [
                `${PATHS.cliCert} 0600 root:root`,
                `${PATHS.cliKey} 0600 root:root`,
                `${PATHS.mainConfig} 0640 root:consul`,
                `${PATHS.joinConfig} 0640 root:consul`,
                `${PATHS.secretConfig} 0640 root:consul`,
                `${PATHS.gossipConfig} 0640 root:consul`,
                `${PATHS.agentTokenFile} 0600 root:root`,
                `${PATHS.managementTokenFile} 0600 root:root`,
                `${PATHS.caFile} 0644 root:consul`,
                `${PATHS.serverKey} 0640 root:consul`,
                `${PATHS.serverCert} 0644 root:consul`,
                `${PATHS.profile} 0644 root:root`,
                `${PATHS.unit} 0644 root:root`,
                `${PATHS.owner} 0644 root:root`,
            ].sort(),
        );
    });

    it("gives a client only the CA, its config and the gossip key + agent token", () => {
        const files = byPath(client);
        assert.deepStrictEqual(
            Object.keys(files).sort(),
            [
                PATHS.mainConfig,
                PATHS.joinConfig,
                PATHS.secretConfig,
                PATHS.gossipConfig,
                PATHS.caFile,
                PATHS.profile,
                PATHS.unit,
                PATHS.owner,
            ].sort(),
        );
        assert.strictEqual(files[PATHS.owner].content, "client-c1\n");
        const secrets = JSON.parse(files[PATHS.secretConfig].content) as Record<string, unknown>;
        assert.deepStrictEqual(secrets, { acl: { tokens: { agent: material.agentToken } } });
        // The key alone in its file: a new one is rolled out by the keyring steps, not a restart.
        assert.deepStrictEqual(JSON.parse(files[PATHS.gossipConfig].content), { encrypt: material.gossipKey });
        assert.strictEqual(files[PATHS.gossipConfig].mode, "0640");
        const all = client.map((f) => f.content).join("\n");
        for (const secret of [material.managementToken, material.serverKeyPem, material.cliKeyPem]) {
            assert.ok(!all.includes(secret as string), "a client got a server secret");
        }
    });

    it("keeps secrets out of the main config, the profile and the unit", () => {
        const files = byPath(server);
        for (const p of [PATHS.mainConfig, PATHS.profile, PATHS.unit, PATHS.caFile]) {
            for (const secret of [material.gossipKey, material.managementToken, material.agentToken, "SECRET"]) {
                assert.ok(!files[p].content.includes(secret as string), `${p} holds a secret`);
            }
        }
    });

    it("configures a server to join the other servers, bind its own IP and use the per-host cert", () => {
        const config = JSON.parse(byPath(server)[PATHS.mainConfig].content) as Record<string, unknown>;
        const join = JSON.parse(byPath(server)[PATHS.joinConfig].content) as Record<string, unknown>;
        // What Consul reads only at start or first bootstrap is apart, so changing it is a reload.
        assert.deepStrictEqual(Object.keys(join).sort(), [
            "autopilot",
            "bootstrap_expect",
            "retry_interval",
            "retry_join",
        ]);
        for (const k of Object.keys(join)) assert.ok(!(k in config), `${k} in the main config too`);
        assert.deepStrictEqual(join.retry_join, ["10.0.0.12", "10.0.0.13"]);
        assert.strictEqual(join.bootstrap_expect, 3);
        assert.strictEqual(config.bind_addr, "10.0.0.11");
        assert.strictEqual(config.node_name, "s1");
        assert.strictEqual(config.data_dir, PATHS.dataDir);
        assert.deepStrictEqual((config.tls as { defaults: unknown }).defaults, {
            ca_file: PATHS.caFile,
            cert_file: PATHS.serverCert,
            key_file: PATHS.serverKey,
            tls_min_version: "TLSv1_2",
            tls_cipher_suites: AEAD_SUITES,
            verify_outgoing: true,
        });
        const unit = byPath(server)[PATHS.unit].content;
        assert.match(unit, /^Type=notify$/m);
        const lone = nodeFiles(settings, "server", vm.servers[0], [vm.servers[0]], material);
        assert.match(byPath(lone)[PATHS.unit].content, /^Type=exec$/m);
        assert.deepStrictEqual(
            (JSON.parse(byPath(lone)[PATHS.joinConfig].content) as { retry_join: string[] }).retry_join,
            ["10.0.0.11"],
        );
    });

    it("writes seed 002's CLI environment; the client certificate and token only for root", () => {
        const profile = renderProfile(hostCliEnvironment(settings, "server"));
        assert.strictEqual(
            profile,
            [
                "# Managed by consul-pulumi: the Consul CLI talks to the local agent over HTTPS.",
                "export CONSUL_HTTP_ADDR='https://127.0.0.1:8501'",
                "export CONSUL_CACERT='/etc/consul.d/tls/ca.pem'",
                'if [ "$(id -u)" -eq 0 ]; then',
                "    export CONSUL_CLIENT_CERT='/etc/consul.d/cli/cli.pem'",
                "    export CONSUL_CLIENT_KEY='/etc/consul.d/cli/cli-key.pem'",
                "    export CONSUL_HTTP_TOKEN_FILE='/etc/consul.d/tokens/management'",
                "fi",
                "",
            ].join("\n"),
        );
        const out = spawnSync("sh", ["-c", `${profile}\nprintf '%s' "$CONSUL_HTTP_ADDR"`], { encoding: "utf8" });
        assert.strictEqual(out.stdout, "https://127.0.0.1:8501");
        assert.match(
            renderProfile(hostCliEnvironment(settings, "client")),
            /CONSUL_CACERT='\/etc\/consul.d\/tls\/agent-ca.pem'/,
        );
    });
});

// --- the whole program under mocks -----------------------------------------------------------------

function commands(result: EvaluatedStack): RecordedResource[] {
    return result.mocks.ofType(COMMAND_TYPE);
}

/**
 * The secrets the policy knows (generatedSecrets, policy/rules.ts) read from the mocks' state, plus
 * what it cannot see: the operator's SSH key, and each private key as its whole PEM (inputs are
 * searched as written here, where the policy searches PEM bodies with the whitespace removed).
 */
function secretsOf(result: EvaluatedStack, sshKey: string): string[] {
    const m = result.mocks;
    return [
        ...m.resources.flatMap((r) => generatedSecrets(r.type, r.state)),
        ...m.ofType(TYPES.privateKey).map((k) => String(k.state.privateKeyPem)),
        sshKey.trim(),
    ].filter((s) => s.length >= 16);
}

describe("VM topology under mocks", function () {
    this.timeout(120000);
    let operator: ReturnType<typeof withOperatorHome>;
    let sshKey: string;
    before(() => {
        operator = withOperatorHome();
        sshKey = fs.readFileSync(path.join(operator.home, ".ssh", "consul_ed25519"), "utf8");
    });
    after(() => operator.restore());

    const variants: [string, () => Record<string, string>, number, number][] = [
        ["Pulumi.prod.yaml", () => stackFileConfig("prod").config, 3, 2],
        ["1 server", () => prodStackWithHosts(1, 2), 1, 2],
        ["5 servers", () => prodStackWithHosts(5, 2), 5, 2],
        ["3 servers + 50 clients", () => prodStackWithHosts(3, 50), 3, 50],
    ];
    for (const [what, config, serverCount, clientCount] of variants) {
        describe(what, () => {
            let result: EvaluatedStack;
            before(async () => {
                result = await evaluateProgram(config(), {
                    stack: "prod",
                    secretKeys: stackFileConfig("prod").secretKeys,
                });
            });

            it("registers one agent command per host plus the ACL and keyring steps", () => {
                const names = commands(result).map((c) => c.name);
                assert.strictEqual(names.length, serverCount + clientCount + CLUSTER_STEPS.length);
                for (const step of CLUSTER_STEPS) assert.ok(names.includes(step), step);
                assert.strictEqual(result.mocks.ofType("consul:vm:ConsulNode").length, serverCount + clientCount);
            });

            it("puts no secret in a non-secret input of any resource", () => {
                const secrets = secretsOf(result, sshKey);
                assert.ok(secrets.length >= serverCount + 4);
                for (const r of result.mocks.resources) {
                    for (const text of plainStrings(r.rawInputs)) {
                        for (const secret of secrets) {
                            assert.ok(!text.includes(secret), `${r.type} ${r.name} has a secret in a plain input`);
                        }
                    }
                }
            });

            it("sends the files as secret stdin, the SSH key as a secret, and keeps scripts plain", () => {
                for (const c of commands(result)) {
                    assert.ok(containsSecret(c.rawInputs.connection), `${c.name} connection`);
                    for (const field of ["create", "update", "delete"]) {
                        if (c.rawInputs[field] !== undefined)
                            assert.ok(!containsSecret(c.rawInputs[field]), `${c.name} ${field}`);
                    }
                    assert.strictEqual(c.inputs.addPreviousOutputInEnv, false);
                    assert.strictEqual(c.inputs.logging, "stdout");
                    if (CLUSTER_STEPS.includes(c.name)) {
                        assert.strictEqual(c.inputs.triggers, undefined);
                        if (c.name === "consul-vm-acl") continue;
                        if (c.name === "consul-vm-metrics-acl") {
                            // The metrics token alone on secret stdin; the script reads it from there.
                            assert.ok(containsSecret(c.rawInputs.stdin), `${c.name} stdin is not secret`);
                            assert.match(String(c.inputs.stdin), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-/);
                            assert.ok(!String(c.inputs.create).includes(String(c.inputs.stdin)), c.name);
                            continue;
                        }
                        // The keyring steps: the gossip key alone on secret stdin, its digest in the script.
                        assert.ok(containsSecret(c.rawInputs.stdin), `${c.name} stdin is not secret`);
                        const digest = crypto.createHash("sha256").update(String(c.inputs.stdin)).digest("hex");
                        assert.ok(String(c.inputs.create).includes(`KEY_SHA256='"'"'${digest}'"'"'`), c.name);
                        continue;
                    }
                    // Only the machine's identity triggers a replace (old machine first): its pinned host
                    // key, else its address. The SSH port, user and key are how it is reached.
                    const connection = c.inputs.connection as { host: string; hostKey?: string };
                    assert.deepStrictEqual(c.inputs.triggers, [
                        connection.hostKey ? `host-key ${connection.hostKey}` : `address ${connection.host}`,
                    ]);
                    assert.strictEqual(c.deleteBeforeReplace, true, `${c.name} deleteBeforeReplace`);
                    assert.ok(containsSecret(c.rawInputs.stdin), `${c.name} stdin is not secret`);
                    assert.strictEqual(c.inputs.update, undefined, "create is re-run on update");
                    const digest = crypto.createHash("sha256").update(String(c.inputs.stdin)).digest("hex");
                    assert.ok(
                        String(c.inputs.create).includes(`BUNDLE_SHA256='"'"'${digest}'"'"'`),
                        "script checks the bundle digest",
                    );
                }
            });

            it("orders the rollout: each server after the previous, ACLs after the last, client batches in waves", () => {
                const byName = new Map(commands(result).map((c) => [c.name, c]));
                const dependsOn = (name: string, other: string) =>
                    (byName.get(name) as RecordedResource).dependencies.some((urn) => urn.endsWith(`::${other}`));
                const serverNames = Array.from(
                    { length: serverCount },
                    (_, i) => `consul-vm-server-consul-server-${i + 1}-agent`,
                );
                for (let i = 1; i < serverCount; i++) {
                    assert.ok(
                        dependsOn(serverNames[i], serverNames[i - 1]),
                        `${serverNames[i]} does not wait for ${serverNames[i - 1]}`,
                    );
                    assert.ok(
                        (byName.get(serverNames[i]) as RecordedResource).order >
                            (byName.get(serverNames[i - 1]) as RecordedResource).order,
                    );
                }
                assert.ok(dependsOn("consul-vm-acl", serverNames[serverCount - 1]));
                // Each server knows the servers changed before it (its leadership hand-over targets).
                serverNames.forEach((name, i) => {
                    const earlier = Array.from({ length: i }, (_, k) => `10.20.0.${11 + k}`).join(" ");
                    const create = String((byName.get(name) as RecordedResource).inputs.create);
                    assert.ok(
                        create.includes(`\nreadonly UPDATED_SERVERS='"'"'${earlier}'"'"'\n`),
                        `${name}: ${earlier}`,
                    );
                });
                const clientNames = commands(result)
                    .map((c) => c.name)
                    .filter((n) => n.startsWith("consul-vm-client-"));
                const batch = (n: string) => Math.floor((parseInt(/app-(\d+)/.exec(n)?.[1] ?? "0", 10) - 1) / 5);
                for (const name of clientNames) {
                    const b = batch(name);
                    const expected =
                        b === 0 ? ["consul-vm-acl"] : clientNames.filter((other) => batch(other) === b - 1);
                    for (const other of expected)
                        assert.ok(dependsOn(name, other), `${name} does not wait for ${other}`);
                    for (const other of clientNames.filter((o) => batch(o) >= b)) {
                        assert.ok(!dependsOn(name, other), `${name} waits for ${other} of a later or the same batch`);
                    }
                }
            });

            it("gives each host its own bundle: right files, lone servers Type=exec", () => {
                for (const c of commands(result).filter((c) => !CLUSTER_STEPS.includes(c.name))) {
                    const files = parseBundle(String(c.inputs.stdin));
                    const paths = files.map((f) => f.path);
                    const isServer = c.name.includes("-server-");
                    assert.strictEqual(paths.includes(PATHS.serverKey), isServer, c.name);
                    assert.strictEqual(paths.includes(PATHS.managementTokenFile), isServer, c.name);
                    const unit = files.find((f) => f.path === PATHS.unit)?.content ?? "";
                    assert.match(unit, serverCount === 1 && isServer ? /^Type=exec$/m : /^Type=notify$/m);
                    const config = JSON.parse(
                        files.find((f) => f.path === PATHS.joinConfig)?.content ?? "{}",
                    ) as Record<string, unknown>;
                    if (isServer) assert.strictEqual(config.bootstrap_expect, serverCount);
                }
            });
        });
    }

    it("re-running with no change runs nothing; changing one client touches that client only", async () => {
        const { secretKeys } = stackFileConfig("prod");
        const base = prodStackWithHosts(3, 10);
        const first = await evaluateProgram(base, { stack: "prod", secretKeys });
        const again = await evaluateProgram(base, { stack: "prod", secretKeys, mocks: new ConsulMocks(first.mocks) });
        assert.deepStrictEqual(
            diffCommands(first.mocks.resources, again.mocks.resources).filter((r) => r.op !== "none"),
            [],
        );
        // app-4 now runs on another machine: another address and another host key.
        const changed = {
            ...base,
            clientHosts: base.clientHosts.replace("app-4=10.20.1.24", "app-4=10.20.1.99"),
            sshHostKeys: base.sshHostKeys.replace(`app-4=${exampleHostKey("app-4")}`, `app-4=${exampleHostKey("new")}`),
        };
        const third = await evaluateProgram(changed, {
            stack: "prod",
            secretKeys,
            mocks: new ConsulMocks(again.mocks),
        });
        const runs = diffCommands(again.mocks.resources, third.mocks.resources).filter((r) => r.op !== "none");
        // A node on another machine is replaced (delete on the old machine, then create on the new
        // one), not updated: an update would leave the old machine running the agent, keys and tokens.
        assert.deepStrictEqual(runs, [
            { name: "consul-vm-client-app-4-agent", host: "10.20.1.99", op: "replace", sessions: 2 },
        ]);
        assert.deepStrictEqual([...sessionsPerHost(runs).values()], [2]);
    });

    it("a new SSH port, user or bastion is the same machine; with a pinned key so is a new address, and a new key is a move", async () => {
        const { secretKeys } = stackFileConfig("prod");
        const key = (n: number) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${String(n).padStart(43, "A")}`;
        // A development stack, so that server 1 can stay unpinned (the address is its identity).
        const base: Record<string, string> = {
            ...prodStackWithHosts(3, 1),
            sshHostKeys: JSON.stringify([`consul-server-3=${key(1)}`]),
        };
        const first = await evaluateProgram(base, { stack: "dev", secretKeys });
        const ops = async (changed: Record<string, string>) => {
            const next = await evaluateProgram(changed, {
                stack: "dev",
                secretKeys,
                mocks: new ConsulMocks(first.mocks),
            });
            return diffCommands(first.mocks.resources, next.mocks.resources)
                .filter((r) => r.op !== "none")
                .map((r) => `${r.op} ${r.name}`);
        };
        const hosts = (third: string) => base.serverHosts.replace("consul-server-3=10.20.0.13", third);
        const server3 = "consul-vm-server-consul-server-3-agent";
        // Unpinned server 1 on another port, pinned server 3 on another port: updates of those two.
        const ports = await ops({
            ...base,
            serverHosts: hosts("consul-server-3=10.20.0.13:2222").replace("=10.20.0.11", "=10.20.0.11:2200"),
        });
        // (The ACL and keyring steps run on server 1 too, so they follow server 1's new port.)
        assert.deepStrictEqual(ports.sort(), [
            "update consul-vm-acl",
            "update consul-vm-keyring-finish",
            "update consul-vm-keyring-install",
            "update consul-vm-metrics-acl",
            "update consul-vm-server-consul-server-1-agent",
            `update ${server3}`,
        ]);
        const reachedOtherwise: Record<string, string>[] = [
            { sshUser: "ops" },
            { sshBastion: "jump.example.com:2022" },
        ];
        for (const change of reachedOtherwise) {
            assert.ok(
                (await ops({ ...base, ...change })).every((op) => op.startsWith("update ")),
                JSON.stringify(change),
            );
        }
        // Pinned: an IP written as a hostname is an update; only a different host key is a move.
        const renamed = await ops({ ...base, serverHosts: hosts("consul-server-3=consul-server-3.example.com") });
        assert.ok(
            renamed.includes(`update ${server3}`) && !renamed.some((op) => op.startsWith("replace")),
            renamed.join(),
        );
        const moved = await ops({ ...base, sshHostKeys: JSON.stringify([`consul-server-3=${key(2)}`]) });
        assert.deepStrictEqual(moved, [`replace ${server3}`]);
    });

    it("a dead host is never contacted: its command stays as deployed, a prune step runs first, the others drop it", async () => {
        const { secretKeys } = stackFileConfig("prod");
        const base = prodStackWithHosts(5, 1);
        const first = await evaluateProgram(base, { stack: "prod", secretKeys });
        const dead = { ...base, deadHosts: JSON.stringify(["consul-server-5"]) };
        const second = await evaluateProgram(dead, { stack: "prod", secretKeys, mocks: new ConsulMocks(first.mocks) });
        const runs = diffCommands(first.mocks.resources, second.mocks.resources);
        const op = (name: string) => runs.find((r) => r.name === name)?.op;
        assert.strictEqual(op("consul-vm-server-consul-server-5-agent"), "none");
        assert.strictEqual(op("consul-vm-prune"), "create");
        assert.ok(!runs.some((r) => r.host === "10.20.0.15" && r.op !== "none"), "the dead host is contacted");
        const prune = second.mocks.resources.find((r) => r.name === "consul-vm-prune");
        assert.match(String(prune?.inputs.create), /DEAD_NODES=\W*consul-server-5\W*\n/);
        assert.strictEqual(
            prune?.inputs.connection && (prune.inputs.connection as { host: string }).host,
            "10.20.0.11",
        );
        // Every live step waits for the prune (through the keyring install); no live config names
        // the dead host any more.
        const install = second.mocks.resources.find((r) => r.name === "consul-vm-keyring-install");
        const server1 = second.mocks.resources.find((r) => r.name === "consul-vm-server-consul-server-1");
        assert.ok(
            install?.dependencies.some((d) => d.endsWith("::consul-vm-prune")),
            "the keyring install does not wait for the prune",
        );
        assert.ok(
            server1?.dependencies.some((d) => d.endsWith("::consul-vm-keyring-install")),
            "server 1 does not wait for the keyring install",
        );
        for (const c of commands(second).filter((c) => c.name.endsWith("-agent") && !c.name.includes("server-5"))) {
            const join = parseBundle(String(c.inputs.stdin)).find((f) => f.path === PATHS.joinConfig)?.content ?? "";
            assert.ok(!join.includes("10.20.0.15"), `${c.name} still joins the dead host`);
        }
        // Then the dead host leaves the lists: it is dropped from the state, and nothing runs on it.
        const gone = withPinnedKeys({
            ...base,
            serverCount: "3",
            serverHosts: JSON.stringify([
                "consul-server-1=10.20.0.11",
                "consul-server-2=10.20.0.12",
                "consul-server-3=10.20.0.13",
            ]),
        });
        const third = await evaluateProgram(gone, { stack: "prod", secretKeys, mocks: new ConsulMocks(second.mocks) });
        const last = diffCommands(second.mocks.resources, third.mocks.resources).filter((r) => r.op === "delete");
        assert.deepStrictEqual(last.map((r) => r.name).sort(), [
            "consul-vm-prune",
            "consul-vm-server-consul-server-4-agent",
        ]);
    });

    it("config changes and an SSH key rotation are updates in place, never replacements", async () => {
        const { secretKeys } = stackFileConfig("prod");
        const base = prodStackWithHosts(3, 2);
        const first = await evaluateProgram(base, { stack: "prod", secretKeys });
        const otherKey = path.join(operator.home, ".ssh", "rotated_ed25519");
        fs.writeFileSync(
            otherKey,
            crypto.generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }),
            { mode: 0o600 },
        );
        const changed = await evaluateProgram(
            { ...base, logLevel: "debug", sshPrivateKeyPath: otherKey },
            { stack: "prod", secretKeys, mocks: new ConsulMocks(first.mocks) },
        );
        const ops = diffCommands(first.mocks.resources, changed.mocks.resources).map((r) => r.op);
        assert.deepStrictEqual([...new Set(ops)], ["update"]);
    });
});
