// Property-based fuzz of parseSettings (issue 13 item 5). Each generated stack config either evaluates
// or fails with one ConfigError whose problems name consul: keys: no other error escapes, unknown keys
// are always reported, no secret marker reaches a message or note, accepted numbers are integers.

import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import fc from "fast-check";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseSettings, Settings } from "../../components/config";
import { configSchema, ConfigKey } from "../../components/config/schema";

// Fixed so every run checks the same 10,000 configs; FUZZ_SEED explores others locally.
const SEED = Number(process.env.FUZZ_SEED ?? 1305);
const RUNS = 10_000;
const KEYS = Object.keys(configSchema) as ConfigKey[];
// Every secret value carries one of these; a leak is the marker showing up in a message.
const SECRET = /SECRET-[0-9a-f]{12}/;
const DEV_STACKS = ["dev", "test-eu", "dev.alice"];
const PINNED_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "consul-config-fuzz-"));
const keyFile = path.join(tmp, "id_ed25519");
const pem = crypto.generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" });
fs.writeFileSync(keyFile, `${pem.toString()}# SECRET-${crypto.randomBytes(6).toString("hex")}\n`);
const pubFile = path.join(tmp, "id_ed25519.pub");
fs.writeFileSync(pubFile, `${PINNED_KEY} SECRET-${crypto.randomBytes(6).toString("hex")}\n`);

type Raw = Record<string, string>;
// secretKeys: set with --secret, as loadSettings passes them (undefined: cannot tell); valid: built to pass.
interface Case {
    readonly raw: Raw;
    readonly stack: string;
    readonly preview?: boolean;
    readonly secretKeys?: readonly string[];
    readonly valid: boolean;
}

const marker = fc.stringMatching(/^[0-9a-f]{12}$/).map((h) => `SECRET-${h}`);
const secretKey = fc
    .tuple(marker, fc.constantFrom("OPENSSH PRIVATE KEY", "PRIVATE KEY", "RSA PRIVATE KEY", "", "$(cat /etc/shadow)"))
    .map(([m, kind]) =>
        kind.endsWith("KEY") ? `-----BEGIN ${kind}-----\n${m}\n-----END ${kind}-----\n` : `${m}${kind}`,
    );
const pemKey = secretKey.filter((k) => k.includes("-----END"));
const repeated = fc.tuple(fc.constantFrom("a", "1", "é", "0.", "🦀", "1s", "[", "a="), fc.nat(4000));
const weird: fc.Arbitrary<string> = fc.oneof(
    fc.string(),
    fc.string({ unit: "grapheme", maxLength: 40 }),
    fc.string({ unit: "binary", maxLength: 40 }),
    repeated.map(([s, n]) => s.repeat(n + 64)),
    fc.constantFrom("", " ", "\n", "\0", "$(reboot)", "`id`", "; rm -rf /", "a|b&&c", "'\"\\", "${HOME}", "*"),
    fc.constantFrom("../../etc/passwd", "~/.ssh/id_rsa", "C:\\key", "null", "undefined", "[object Object]"),
);
const intText = fc.oneof(
    fc.integer({ min: -70_000, max: 200_000 }).map(String),
    fc.constantFrom("", " 3 ", "3.0", "1e3", "0x1F", "+5", "--1", "١٢", "NaN", "Infinity", "-0", "007"),
    fc.constantFrom("99999999999999999999", "-99999999999999999999", "9007199254740993", "1".repeat(400)),
);
const boolText = fc.constantFrom("true", "false", "True", "FALSE", "yes", "1", "", " true", "true\n");
const label = fc.stringMatching(/^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$/);
const goodName = fc.oneof({ weight: 5, arbitrary: label }, fc.constantFrom("constructor", "s1", "c1"));
const nodeName = fc.oneof({ weight: 9, arbitrary: goodName }, fc.constantFrom("S1", "a_b"));
const address = fc.oneof(
    fc.ipV4(),
    fc.ipV6().map((a) => `[${a}]`),
    fc.ipV6(),
    fc.domain(),
    fc.constantFrom("10.0.0.256", "1.2.3", "[::1", "[zz]", "::1]", "a..b", "host_name", "", "-bad-.com", "1.2.3.4.5"),
);
const sshPort = fc.constantFrom("", ":22", ":0", ":65536", ":x");
const hostEntry = fc.oneof(
    fc.tuple(nodeName, fc.constantFrom("=", " = ", "==", ""), address, sshPort).map((p) => p.join("")),
    fc.tuple(nodeName, fc.constantFrom(PINNED_KEY, "ssh-dss AAAA", "", "x y z")).map(([n, k]) => `${n}=${k}`),
    nodeName,
    weird,
);
const arrayText = fc.oneof(
    fc.array(hostEntry, { maxLength: 9 }).map((a) => JSON.stringify(a)),
    fc.constantFrom("", "[", "{}", "null", '"s1=10.0.0.1"', "[1]", "[null]", "[[]]", "s1=10.0.0.1", '["a",]'),
);
const pathText = fc.oneof(
    fc.constantFrom(keyFile, pubFile, tmp, path.join(tmp, "missing"), "~/nope", "", "/", "a\0b"),
    pemKey, // the key pasted where its path belongs
);

// Values that pass on their own (booleans: true and false); any mix of them and the defaults is consistent.
const VALID: Partial<Record<ConfigKey, readonly string[]>> = {
    datacenter: ["dc1", "eu-west-1", "a"],
    consulVersion: ["1.16.3", "1.12.0", "1.17.0-rc1"],
    serverCount: ["1", "3", "5", "7"],
    logLevel: ["trace", "debug", "info", "warn", "error"],
    raftMultiplier: ["1", "5", "10"],
    httpsPort: ["8501", "443"],
    httpPort: ["-1", "8500"],
    dnsPort: ["-1", "8600", "53"],
    aclDownPolicy: ["allow", "deny", "extend-cache", "async-cache"],
    caValidityHours: ["43800", "175200", "8761"],
    certValidityHours: ["8760", "721"],
    certEarlyRenewalHours: ["0", "720"],
    telemetryRetention: ["60s", "5m", "1h30m", "1.5h"],
    k8sNamespace: ["consul", "infra-consul"],
    k8sClientNamespace: ["", "consul-agents", "infra-consul-clients"],
    k8sKubeconfig: ["", keyFile],
    image: ["", "hashicorp/consul:1.16.3", "registry.example.com:5000/team/consul@sha256:" + "a".repeat(64)],
    storageClass: ["", "glusterfs", "fast.ssd"],
    storageSize: ["10Gi", "1Mi", "500G"],
    pvcRetentionWhenDeleted: ["Retain", "Delete"],
    antiAffinity: ["required", "preferred"],
    uiServiceType: ["ClusterIP", "NodePort", "LoadBalancer"],
    updatePartition: ["0", "2"],
    serverCpuRequest: ["100m", "0.25"],
    serverCpuLimit: ["500m", "2"],
    serverMemoryLimit: ["512Mi", "1Gi"],
    clientNetworkMode: ["hostNetwork", "hostPort"],
    clientDataHostPath: ["/var/lib/consul-client", "/data/c"],
    k8sAppNamespaces: ["[]", '["web","api"]', '["web","web"]'],
    sshUser: ["root", "ubuntu", "_svc"],
    sshBastion: ["", "ops@bastion.example.com:22", "10.0.0.254", "[fd00::1]:2200"],
    installMode: ["download", "preinstalled"],
    releaseMirrorUrl: ["https://releases.hashicorp.com", "https://mirror.local/consul/"],
    clientBatchSize: ["1", "5", "100"],
    // true is valid only on vm, with ACLs on and the DNS port open (tests/config/dns.test.ts).
    dnsDefaultToken: ["false"],
};
const validFor = (k: ConfigKey) => VALID[k] ?? (configSchema[k].type === "boolean" ? ["true", "false"] : undefined);

const validKeys = KEYS.filter((k) => validFor(k) !== undefined);
/** A consistent config for one topology: hosts, key, pins and server count agree. */
const validCase = fc
    .record({
        topology: fc.constantFrom("kubernetes", "vm", "hybrid"),
        values: fc.record(Object.fromEntries(validKeys.map((k) => [k, fc.option(fc.constantFrom(...validFor(k)!))]))),
        names: fc.uniqueArray(goodName, { minLength: 10, maxLength: 10 }),
        servers: fc.constantFrom(1, 3, 5, 7),
        clients: fc.nat(3),
        addressKind: fc.constantFrom("ipv4", "ipv6", "dns"),
        inlineKey: fc.option(pemKey, { nil: undefined }),
        pinAll: fc.boolean(),
        pinned: fc.nat(10),
        dead: fc.nat(3),
        stack: fc.constantFrom("prod", "staging", "devops", ...DEV_STACKS),
    })
    .map((c): Case => {
        const raw: Raw = { topology: c.topology };
        for (const [k, v] of Object.entries(c.values)) if (v !== null) raw[k] = v;
        if (c.topology === "kubernetes") return { raw, stack: c.stack, valid: true };
        const hosts = c.names.slice(0, c.servers + (c.topology === "vm" ? c.clients : 0));
        const at = (i: number) =>
            ({ ipv4: `10.0.1.${i + 1}`, ipv6: `[fd00::${i + 1}]:2222`, dns: `${hosts[i]}.example.com` })[c.addressKind];
        raw.serverHosts = JSON.stringify(hosts.slice(0, c.servers).map((n, i) => `${n}=${at(i)}`));
        raw.clientHosts = JSON.stringify(hosts.slice(c.servers).map((n, i) => `${n}=${at(i + c.servers)}`));
        raw.serverCount = String(c.servers);
        if (c.inlineKey !== undefined) raw.sshPrivateKey = c.inlineKey;
        else raw.sshPrivateKeyPath = keyFile;
        const pinned = hosts.slice(0, c.pinAll ? hosts.length : c.pinned);
        const dead = hosts.slice(1, 1 + c.dead);
        raw.sshHostKeys = JSON.stringify(pinned.map((n) => `${n}=${PINNED_KEY}`));
        raw.deadHosts = JSON.stringify(dead);
        // Outside development stacks every live host must be pinned.
        const unpinned = hosts.filter((n) => !pinned.includes(n) && !dead.includes(n));
        return { raw, stack: c.stack, valid: DEV_STACKS.includes(c.stack) || unpinned.length === 0 };
    });

const valueFor = (k: ConfigKey): fc.Arbitrary<string | undefined> => {
    const type = configSchema[k].type;
    const typed = type === "integer" ? intText : type === "boolean" ? boolText : type === "array" ? arrayText : weird;
    return fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...(validFor(k) ?? [""])) },
        { weight: 4, arbitrary: typed },
        { weight: 2, arbitrary: weird },
        { weight: 1, arbitrary: k === "sshPrivateKey" ? secretKey : k === "sshPrivateKeyPath" ? pathText : intText },
        { weight: 1, arbitrary: fc.constant(undefined) }, // a missing key
    );
};
// Typos and plausible-but-unsupported keys hold secrets too: users set them with --secret.
const secretishKey = fc.constantFrom("sshPrivatekey", "sshPrivateKeys", "privateKey", "gossipKey", "aclToken");
const unknownKey = fc.oneof(
    fc.constantFrom("topolgy", "serverHost", "Datacenter", "consul:topology", "toString", "constructor", "__proto__"),
    fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,30}$/).filter((k) => !Object.hasOwn(configSchema, k)),
);
const mutation: fc.Arbitrary<[string, string | undefined]> = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...KEYS).chain((k) => fc.tuple(fc.constant(k), valueFor(k))) },
    { weight: 1, arbitrary: fc.tuple(unknownKey, weird) },
    { weight: 1, arbitrary: fc.tuple(secretishKey, secretKey) },
);
const mutated = fc.array(mutation, { minLength: 1, maxLength: 6 });
/** Valid configs, and the same with 1 to 6 keys set to adversarial values, dropped or added. */
const stackCase: fc.Arbitrary<Case> = fc
    .record({
        base: validCase,
        mutations: fc.oneof(fc.constant([]), { weight: 2, arbitrary: mutated }),
        preview: fc.boolean(),
        secretKeys: fc.option(fc.subarray(KEYS, { maxLength: 3 }), { nil: undefined }),
    })
    .map(({ base, mutations, preview, secretKeys }) => {
        const entries = new Map(Object.entries(base.raw));
        for (const [k, v] of mutations) {
            if (v === undefined) entries.delete(k);
            else entries.set(k, v);
        }
        // fromEntries so "__proto__" lands as an own key, as in a parsed stack file.
        const raw = Object.fromEntries(entries);
        // A marked value was set with --secret; a caller that knows so says so.
        const marked = [...entries].filter(([, v]) => SECRET.test(v)).map(([k]) => k);
        const known = secretKeys && [...new Set([...secretKeys, ...marked])];
        return { raw, stack: base.stack, preview, secretKeys: known, valid: base.valid && mutations.length === 0 };
    });

function numbersIn(value: unknown, at: string): [string, number][] {
    if (typeof value === "number") return [[at, value]];
    if (value === null || typeof value !== "object" || pulumi.Output.isInstance(value)) return [];
    return Object.entries(value).flatMap(([k, v]) => numbersIn(v, `${at}.${k}`));
}

/** Runs one case and checks the property; resolves once the SSH key Output has settled. */
async function check(c: Case): Promise<void> {
    const unknown = Object.keys(c.raw).filter((k) => !Object.hasOwn(configSchema, k));
    const context = { preview: c.preview ?? false, secretKeys: c.secretKeys && new Set(c.secretKeys) };
    let settings: Settings;
    const started = performance.now();
    try {
        settings = parseSettings(c.raw, "consul", c.stack, context);
    } catch (err) {
        assert.ok(performance.now() - started < 2000, "took over 2 s");
        const escaped = `escaped: ${err instanceof Error ? err.stack : String(err)}`;
        assert.ok(err instanceof ConfigError && pulumi.RunError.isInstance(err), escaped);
        assert.ok(!c.valid, `a valid config was rejected:\n${err.message}`);
        assert.ok(err.problems.length > 0 && !/\n\s+at /.test(err.message), err.message);
        for (const p of err.problems) {
            const k = /^consul:(\S*) = /.exec(p)?.[1];
            assert.ok(k !== undefined && (Object.hasOwn(configSchema, k) || Object.hasOwn(c.raw, k)), `no key: ${p}`);
        }
        const reported = (k: string) => err.problems.some((p) => p.startsWith(`consul:${k} = `));
        for (const k of unknown) assert.ok(reported(k), `unknown key ${k} not reported`);
        assert.ok(!SECRET.test(err.message), `a secret leaked:\n${err.message}`);
        return;
    }
    assert.ok(performance.now() - started < 2000, "took over 2 s");
    assert.deepStrictEqual(unknown, [], `unknown keys accepted: ${unknown.join(", ")}`);
    for (const note of settings.notes) assert.ok(/^consul:\S+ = /.test(note) && !SECRET.test(note), note);
    // Accepted numbers reach manifests and agent config, where 1e20 or Infinity is no valid value.
    for (const [at, n] of numbersIn(settings, "settings")) assert.ok(Number.isSafeInteger(n), `accepted ${at} = ${n}`);
    const vm = settings.vm;
    if (!vm) return;
    for (const h of [...vm.servers, ...vm.clients]) {
        const pinned = Object.hasOwn(vm.hostKeys ?? {}, h.name) || vm.deadHosts.includes(h.name);
        assert.ok(pinned || DEV_STACKS.includes(c.stack), `${h.name} unpinned in stack ${c.stack}`);
    }
    assert.strictEqual(typeof (await new Promise((resolve) => vm.sshPrivateKey.apply(resolve))), "string");
}

const leakedKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-0123456789ab\n-----END OPENSSH PRIVATE KEY-----\n";
const oneHost = { topology: "vm", serverCount: "1", sshPrivateKeyPath: keyFile };
const ctorHost: Raw = { ...oneHost, serverHosts: '["constructor=10.0.0.1"]' };
const pasted: Raw = { ...oneHost, serverHosts: '["s1=10.0.0.1"]', sshPrivateKeyPath: leakedKey };
const [accepted, inDev] = [{ valid: true }, { stack: "dev" }];
const named = (name: string, raw: Raw, more?: Partial<Case>) => ({ name, raw, stack: "prod", valid: false, ...more });

// Every config the fuzz once failed on (shrunk by hand), run whatever the seed.
const regressions = [
    named("generator: a VALID value must fit the defaults", { topology: "kubernetes", certValidityHours: "24" }),
    named("Object.prototype names pass as known keys", { toString: "x" }),
    named("__proto__ passes as a known key", { ["__proto__"]: "x" }),
    named("constructor cannot pin a key", { ...ctorHost, sshHostKeys: `["constructor=${PINNED_KEY}"]` }, accepted),
    named("constructor counts as pinned", ctorHost),
    named("a mistyped secret key echoes its value", { sshPrivatekey: leakedKey }),
    named("a key pasted into sshPrivateKeyPath is echoed", pasted, inDev),
    named("a key in the path next to sshPrivateKey is echoed", { ...pasted, sshPrivateKey: leakedKey }, inDev),
    named("updatePartition accepts numbers past 2^53", { updatePartition: "99999999999999999999" }),
];
// Configs the fuzz fails on that components/ does not handle yet: they fail until the code is fixed.
const openBugs: ReturnType<typeof named>[] = [];

describe("config fuzz: parseSettings on generated stack configs", function () {
    this.timeout(55_000);
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    before(() => process.on("unhandledRejection", onRejection));
    after(() => {
        process.off("unhandledRejection", onRejection);
        fs.rmSync(tmp, { recursive: true, force: true });
    });

    it(`holds for ${RUNS} generated configs`, async () => {
        console.log(`      fast-check seed ${SEED} (set FUZZ_SEED to try another)`);
        await fc.assert(fc.asyncProperty(stackCase, check), { numRuns: RUNS, seed: SEED });
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepStrictEqual(rejections, [], "unhandled rejections");
    });

    for (const c of regressions) it(`regression: ${c.name}`, () => check(c));
    for (const c of openBugs) it(`open bug: ${c.name}`, () => check(c));
});
