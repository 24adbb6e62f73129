import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as crypto from "crypto";
import * as yaml from "js-yaml";
import { ConfigError, parseHost, parseQuantity, parseSettings, Settings } from "../../components/config";
import { configSchema } from "../../components/config/schema";
import { PULUMI_YAML, schemaAsProjectConfig } from "../../scripts/sync-pulumi-yaml";
import { exampleHostKey, withPinnedKeys } from "../vm/fixtures";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "consul-config-test-"));
const keyFile = path.join(tmp, "id_ed25519");
fs.writeFileSync(keyFile, crypto.generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }));
const pubFile = path.join(tmp, "id_ed25519.pub");
fs.writeFileSync(pubFile, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@host\n");

const vmBase: Record<string, string> = withPinnedKeys({
    topology: "vm",
    serverHosts: JSON.stringify(["s1=10.0.0.11", "s2=10.0.0.12", "s3=10.0.0.13"]),
    clientHosts: JSON.stringify(["c1=10.0.0.21"]),
    sshPrivateKeyPath: keyFile,
});

function problemsOf(
    raw: Record<string, string>,
    stack = "prod",
    context: { preview?: boolean; secretKeys?: ReadonlySet<string> } = {},
): string[] {
    try {
        parseSettings(raw, "consul", stack, context);
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
        return err.problems as string[];
    }
    return [];
}

interface BadCase {
    readonly what: string;
    readonly raw: Record<string, string>;
    readonly key: string;
    /** The bad value as it appears in the message. */
    readonly value: string;
    /** A fragment of the fix the message must give. */
    readonly fix: RegExp;
}

const badCases: BadCase[] = [
    {
        what: "unknown topology",
        raw: { topology: "nomad" },
        key: "topology",
        value: '"nomad"',
        fix: /one of kubernetes, vm, hybrid/,
    },
    { what: "even server count", raw: { serverCount: "4" }, key: "serverCount", value: "4", fix: /use 3 or 5/ },
    {
        what: "server count 0",
        raw: { serverCount: "0" },
        key: "serverCount",
        value: "0",
        fix: /odd and between 1 and 7/,
    },
    { what: "server count 9", raw: { serverCount: "9" }, key: "serverCount", value: "9", fix: /between 1 and 7/ },
    {
        what: "server count not a number",
        raw: { serverCount: "three" },
        key: "serverCount",
        value: '"three"',
        fix: /whole number/,
    },
    {
        what: "datacenter with upper case and dot",
        raw: { datacenter: "DC.1" },
        key: "datacenter",
        value: '"DC.1"',
        fix: /DNS label/,
    },
    {
        what: "domain with underscore",
        raw: { domain: "my_domain" },
        key: "domain",
        value: '"my_domain"',
        fix: /DNS label/,
    },
    {
        what: "version with leading v",
        raw: { consulVersion: "v1.16.2" },
        key: "consulVersion",
        value: '"v1.16.2"',
        fix: /no leading v/,
    },
    {
        what: "version before the tls {} stanza",
        raw: { consulVersion: "1.11.9" },
        key: "consulVersion",
        value: '"1.11.9"',
        fix: /older than 1\.12\.0.*tls \{\}/,
    },
    {
        what: "log level",
        raw: { logLevel: "verbose" },
        key: "logLevel",
        value: '"verbose"',
        fix: /trace, debug, info, warn, error/,
    },
    {
        what: "raft multiplier 0",
        raw: { raftMultiplier: "0" },
        key: "raftMultiplier",
        value: "0",
        fix: /between 1 and 10/,
    },
    {
        what: "port out of range",
        raw: { httpsPort: "70000" },
        key: "httpsPort",
        value: "70000",
        fix: /between 1 and 65535/,
    },
    {
        what: "port clash",
        raw: { dnsPort: "8501" },
        key: "dnsPort",
        value: "8501",
        fix: /already used by consul:httpsPort/,
    },
    { what: "boolean typo", raw: { aclEnabled: "yes" }, key: "aclEnabled", value: '"yes"', fix: /true or false/ },
    {
        what: "allow policy in prod",
        raw: { aclDefaultPolicy: "allow" },
        key: "aclDefaultPolicy",
        value: '"allow"',
        fix: /set it to deny/,
    },
    {
        what: "unknown down policy",
        raw: { aclDownPolicy: "cache" },
        key: "aclDownPolicy",
        value: '"cache"',
        fix: /extend-cache/,
    },
    {
        what: "cert outlives CA",
        raw: { caValidityHours: "1000", certValidityHours: "2000" },
        key: "certValidityHours",
        value: "2000",
        fix: /shorter than caValidityHours/,
    },
    {
        what: "renewal window covers whole validity",
        raw: { certEarlyRenewalHours: "9000" },
        key: "certEarlyRenewalHours",
        value: "9000",
        fix: /below certValidityHours/,
    },
    {
        what: "CA validity too short",
        raw: { caValidityHours: "1" },
        key: "caValidityHours",
        value: "1",
        fix: /between 24 hours and 20 years/,
    },
    {
        what: "telemetry retention not a duration",
        raw: { telemetryRetention: "1 minute" },
        key: "telemetryRetention",
        value: '"1 minute"',
        fix: /Go duration such as 60s/,
    },
    {
        what: "empty gossip keeper",
        raw: { gossipKeyKeeper: " " },
        key: "gossipKeyKeeper",
        value: '" "',
        fix: /keep the previous value/,
    },
    {
        what: "bad storage size",
        raw: { storageSize: "10 gigs" },
        key: "storageSize",
        value: '"10 gigs"',
        fix: /quantity of at least 1Mi, such as 10Gi/,
    },
    {
        what: "namespace not a DNS label",
        raw: { k8sNamespace: "Consul_NS" },
        key: "k8sNamespace",
        value: '"Consul_NS"',
        fix: /DNS label/,
    },
    {
        what: "application namespace not a DNS label",
        raw: { k8sAppNamespaces: JSON.stringify(["shop", "Apps_NS"]) },
        key: "k8sAppNamespaces",
        value: '"Apps_NS"',
        fix: /application namespace must be a DNS label/,
    },
    {
        what: "client namespace not a DNS label",
        raw: { k8sClientNamespace: "Consul_Clients" },
        key: "k8sClientNamespace",
        value: '"Consul_Clients"',
        fix: /a namespace must be a DNS label/,
    },
    {
        what: "client namespace = the servers' (restricted) namespace",
        raw: { k8sNamespace: "infra", k8sClientNamespace: "infra" },
        key: "k8sClientNamespace",
        value: '"infra"',
        fix: /must differ from consul:k8sNamespace: the servers' namespace enforces Pod Security "restricted", which refuses the client agents \(hostNetwork, hostPath\); leave it empty for "infra-clients"/,
    },
    {
        what: "derived client namespace too long",
        raw: { k8sNamespace: "a".repeat(60) },
        key: "k8sNamespace",
        value: `"${"a".repeat(60)}"`,
        fix: /the client agents' namespace would be "a{60}-clients", not a DNS label \(at most 63 characters\); set consul:k8sClientNamespace/,
    },
    {
        what: "an app namespace is the clients' (privileged) namespace",
        raw: { k8sAppNamespaces: JSON.stringify(["shop", "consul-clients"]) },
        key: "k8sAppNamespaces",
        value: '"consul-clients"',
        fix: /is the client agents' namespace, where Pod Security enforces "privileged": run applications in a namespace of their own/,
    },
    {
        what: "requests above limits",
        raw: { serverMemoryRequest: "1Gi", serverMemoryLimit: "512Mi" },
        key: "serverMemoryRequest",
        value: '"1Gi"',
        fix: /lower the request or raise the limit/,
    },
    {
        what: "cpu quantity malformed",
        raw: { clientCpuLimit: "fast" },
        key: "clientCpuLimit",
        value: '"fast"',
        fix: /positive Kubernetes quantity such as 500m/,
    },
    {
        what: "image reference malformed",
        raw: { image: "hashicorp/consul:1.16 2" },
        key: "image",
        value: '"hashicorp/consul:1.16 2"',
        fix: /container image reference/,
    },
    {
        what: "anti-affinity value",
        raw: { antiAffinity: "soft" },
        key: "antiAffinity",
        value: '"soft"',
        fix: /required, preferred/,
    },
    {
        what: "service type",
        raw: { uiServiceType: "Ingress" },
        key: "uiServiceType",
        value: '"Ingress"',
        fix: /ClusterIP, NodePort, LoadBalancer/,
    },
    {
        what: "negative partition",
        raw: { updatePartition: "-1" },
        key: "updatePartition",
        value: "-1",
        fix: /0 or more/,
    },
    {
        what: "client network mode",
        raw: { clientNetworkMode: "cni" },
        key: "clientNetworkMode",
        value: '"cni"',
        fix: /hostNetwork, hostPort/,
    },
    {
        what: "relative host path",
        raw: { clientDataHostPath: "data/consul" },
        key: "clientDataHostPath",
        value: '"data/consul"',
        fix: /absolute path/,
    },
    {
        what: "unknown key with a suggestion",
        raw: { serverCont: "3" },
        key: "serverCont",
        value: '"[not shown]"',
        fix: /did you mean consul:serverCount/,
    },
    {
        what: "hosts listed for the kubernetes topology",
        raw: { serverHosts: '["a=10.0.0.1"]' },
        key: "serverHosts",
        value: '["a=10.0.0.1"]',
        fix: /only used by the vm and hybrid topologies/,
    },
    // VM topology
    {
        what: "malformed IPv4 address",
        raw: { ...vmBase, serverHosts: '["s1=10.0.0.311","s2=10.0.0.12","s3=10.0.0.13"]' },
        key: "serverHosts",
        value: '"s1=10.0.0.311"',
        fix: /not a valid IPv4 address/,
    },
    {
        what: "host entry without a name",
        raw: { ...vmBase, clientHosts: '["10.0.0.21"]' },
        key: "clientHosts",
        value: '"10.0.0.21"',
        fix: /<node-name>=<address>/,
    },
    {
        what: "invalid hostname",
        raw: { ...vmBase, clientHosts: '["c1=bad_host.example.com"]' },
        key: "clientHosts",
        value: '"c1=bad_host.example.com"',
        fix: /neither an IP address nor a valid hostname/,
    },
    {
        what: "bad IPv6 in brackets",
        raw: { ...vmBase, clientHosts: '["c1=[fe80::zz]:22"]' },
        key: "clientHosts",
        value: '"c1=[fe80::zz]:22"',
        fix: /not a valid IPv6 address/,
    },
    {
        what: "bad SSH port",
        raw: { ...vmBase, clientHosts: '["c1=10.0.0.21:0"]' },
        key: "clientHosts",
        value: '"c1=10.0.0.21:0"',
        fix: /SSH port "0" must be 1 to 65535/,
    },
    {
        what: "even number of server hosts",
        raw: { ...vmBase, serverHosts: '["s1=10.0.0.11","s2=10.0.0.12"]' },
        key: "serverHosts",
        value: '["s1","s2"]',
        fix: /odd number from 1 to 7/,
    },
    {
        what: "duplicate host address",
        raw: { ...vmBase, clientHosts: '["c1=10.0.0.11"]' },
        key: "clientHosts",
        value: '"10.0.0.11"',
        fix: /give each host its own/,
    },
    {
        what: "duplicate node name",
        raw: { ...vmBase, clientHosts: '["s1=10.0.0.31"]' },
        key: "clientHosts",
        value: '"s1"',
        fix: /node names must be unique/,
    },
    {
        what: "server count disagrees with hosts",
        raw: { ...vmBase, serverCount: "5" },
        key: "serverCount",
        value: "5",
        fix: /set serverCount to 3/,
    },
    {
        what: "missing SSH key",
        raw: { ...vmBase, sshPrivateKeyPath: "" },
        key: "sshPrivateKeyPath",
        value: '""',
        fix: /needs an SSH key/,
    },
    {
        what: "SSH key file does not exist",
        raw: { ...vmBase, sshPrivateKeyPath: "/nonexistent/id_ed25519" },
        key: "sshPrivateKeyPath",
        value: '"/nonexistent/id_ed25519"',
        fix: /no such file/,
    },
    {
        what: "SSH public key given as private key",
        raw: { ...vmBase, sshPrivateKeyPath: pubFile },
        key: "sshPrivateKeyPath",
        value: JSON.stringify(pubFile),
        fix: /did you give the .pub file/,
    },
    {
        what: "SSH user name",
        raw: { ...vmBase, sshUser: "Root User" },
        key: "sshUser",
        value: '"Root User"',
        fix: /POSIX user name/,
    },
    {
        what: "bastion syntax",
        raw: { ...vmBase, sshBastion: "ops@@bastion" },
        key: "sshBastion",
        value: '"ops@@bastion"',
        fix: /\[user@\]host\[:port\]/,
    },
    {
        what: "host key for an unknown node",
        raw: { ...vmBase, sshHostKeys: JSON.stringify(["s9=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"]) },
        key: "sshHostKeys",
        value: '"s9=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"',
        fix: /node listed in serverHosts or clientHosts/,
    },
    {
        what: "dead host that is not listed",
        raw: { ...vmBase, deadHosts: JSON.stringify(["s9"]) },
        key: "deadHosts",
        value: '"s9"',
        fix: /still listed in serverHosts or clientHosts/,
    },
    {
        what: "every server dead",
        raw: { ...vmBase, deadHosts: JSON.stringify(["s1", "s2", "s3"]) },
        key: "deadHosts",
        value: '["s1","s2","s3"]',
        fix: /at least one live server/,
    },
    {
        what: "host key that is not a public key",
        raw: { ...vmBase, sshHostKeys: JSON.stringify(["s1=SHA256:abcdef"]) },
        key: "sshHostKeys",
        value: '"s1=SHA256:abcdef"',
        fix: /ssh-keyscan/,
    },
    {
        what: "release mirror not a URL",
        raw: { ...vmBase, releaseMirrorUrl: "releases.example.com" },
        key: "releaseMirrorUrl",
        value: '"releases.example.com"',
        fix: /https URL/,
    },
    {
        what: "SSH key path that is a device, not a file (it would never end)",
        raw: { ...vmBase, sshPrivateKeyPath: "/dev/zero" },
        key: "sshPrivateKeyPath",
        value: '"/dev/zero"',
        fix: /not a PEM\/OpenSSH private key/,
    },
    {
        what: "install mode",
        raw: { ...vmBase, installMode: "apt" },
        key: "installMode",
        value: '"apt"',
        fix: /download or preinstalled/,
    },
    {
        what: "client batch size",
        raw: { ...vmBase, clientBatchSize: "0" },
        key: "clientBatchSize",
        value: "0",
        fix: /between 1 and 100/,
    },
    {
        what: "host list not a list",
        raw: { ...vmBase, clientHosts: "c1=10.0.0.21" },
        key: "clientHosts",
        value: '"c1=10.0.0.21"',
        fix: /list of strings/,
    },
    {
        what: "hybrid without server hosts",
        raw: { topology: "hybrid", sshPrivateKeyPath: keyFile },
        key: "serverHosts",
        value: "[]",
        fix: /needs server hosts/,
    },
    {
        what: "hybrid with client hosts",
        raw: { ...vmBase, topology: "hybrid", sshHostKeys: "[]" },
        key: "clientHosts",
        value: '["c1=10.0.0.21"]',
        fix: /runs client agents in Kubernetes/,
    },
];

describe("config validation", () => {
    it("has at least 25 distinct bad inputs", () => {
        assert.ok(badCases.length >= 25, `only ${badCases.length}`);
        assert.strictEqual(new Set(badCases.map((c) => c.what)).size, badCases.length);
    });

    for (const c of badCases) {
        it(`rejects ${c.what}, naming the key, the value and the fix`, () => {
            const problems = problemsOf(c.raw);
            const prefix = `consul:${c.key} = ${c.value}: `;
            const match = problems.find((p) => p.startsWith(prefix));
            assert.ok(match, `no problem starts with ${prefix}\n${problems.join("\n")}`);
            assert.match(match, c.fix);
        });
    }

    it("reports every problem at once, in one readable message without a stack trace", () => {
        try {
            parseSettings({ serverCount: "2", datacenter: "DC", storageSize: "huge" }, "consul", "prod");
            assert.fail("expected a ConfigError");
        } catch (err) {
            assert.ok(err instanceof ConfigError);
            assert.strictEqual(err.problems.length, 3);
            assert.match(
                err.message,
                /^Invalid stack configuration \(3 problems\); nothing was changed:\n {2}- consul:/,
            );
            // pulumi.RunError is what the engine prints as a message alone, without a stack.
            assert.strictEqual(err.name, "ConfigError");
            assert.strictEqual((err as unknown as { __pulumiRunError: boolean }).__pulumiRunError, true);
        }
    });

    it("never echoes an inline SSH private key in a message", () => {
        const problems = problemsOf({ ...vmBase, sshPrivateKeyPath: "", sshPrivateKey: "not a key but secret-ish" });
        assert.ok(
            problems.some((p) => p.startsWith('consul:sshPrivateKey = "[secret]"')),
            problems.join("\n"),
        );
        assert.ok(!problems.join("\n").includes("secret-ish"));
    });

    it("accepts the defaults and applies them", () => {
        const settings = parseSettings({}, "consul", "dev");
        assert.strictEqual(settings.topology, "kubernetes");
        assert.strictEqual(settings.serverCount, 3);
        assert.strictEqual(settings.datacenter, "dc1");
        assert.strictEqual(settings.ports.https, 8501);
        assert.strictEqual(settings.ports.http, -1);
        assert.strictEqual(settings.acl.defaultPolicy, "deny");
        assert.strictEqual(settings.kubernetes?.image, `hashicorp/consul:${configSchema.consulVersion.default}`);
        assert.strictEqual(settings.vm, undefined);
    });

    it("parses a VM stack: hosts, IPv6, hostnames, ports, bastion", () => {
        const settings: Settings = parseSettings(
            {
                ...vmBase,
                serverHosts: JSON.stringify(["s1=10.0.0.11", "s2=[2001:db8::2]:2222", "s3=Consul-3.Example.com:22"]),
                sshBastion: "ops@bastion.example.com:2200",
                sshHostKeys: "[]",
            },
            "consul",
            "dev",
        );
        const vm = settings.vm!;
        assert.deepStrictEqual(vm.servers, [
            { name: "s1", address: "10.0.0.11", addressIsIp: true, sshPort: 22 },
            { name: "s2", address: "2001:db8::2", addressIsIp: true, sshPort: 2222 },
            { name: "s3", address: "consul-3.example.com", addressIsIp: false, sshPort: 22 },
        ]);
        assert.deepStrictEqual(vm.bastion, { host: "bastion.example.com", port: 2200, user: "ops" });
        assert.strictEqual(settings.serverCount, 3);
        assert.strictEqual(settings.kubernetes, undefined);
        assert.strictEqual(vm.hostKeys, undefined);
    });

    it("parses pinned SSH host keys by node name", () => {
        const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample";
        const settings = parseSettings(
            { ...vmBase, sshHostKeys: JSON.stringify([`s1=${key} root@s1`, `c1=${key}`]) },
            "consul",
            "dev-alice",
        );
        assert.deepStrictEqual({ ...settings.vm!.hostKeys }, { s1: key, c1: key });
    });

    it("refuses a non-development stack with an unpinned host: one problem naming the hosts, the ssh-keyscan commands and how dev stacks are named", () => {
        const raw = {
            ...vmBase,
            serverHosts: JSON.stringify(["s1=10.0.0.11", "s2=10.0.0.12:2222", "s3=10.0.0.13"]),
            sshHostKeys: JSON.stringify([`s1=${exampleHostKey("s1")}`, `s3=${exampleHostKey("s3")}`]),
        };
        for (const stack of ["prod", "staging", "devops", "testing", "development"]) {
            const problems = problemsOf(raw, stack);
            assert.strictEqual(problems.length, 1, problems.join("\n"));
            assert.ok(problems[0].startsWith('consul:sshHostKeys = ["s2","c1"]: no pinned SSH host key'), problems[0]);
            assert.match(
                problems[0],
                /ssh-keyscan -t ed25519 -p 2222 10\.0\.0\.12; ssh-keyscan -t ed25519 10\.0\.0\.21/,
            );
            assert.match(
                problems[0],
                new RegExp(`Stack "${stack}" is not a development stack \\(those are named dev or test`),
            );
        }
        for (const stack of ["dev", "test", "dev-alice", "test.e2e", "dev_1"])
            assert.deepStrictEqual(problemsOf(raw, stack), []);
        // A dead host is never contacted, so it needs no key.
        assert.deepStrictEqual(
            problemsOf({
                ...raw,
                serverHosts: JSON.stringify(["s1=10.0.0.11", "s2=10.0.0.12", "s3=10.0.0.13"]),
                clientHosts: "[]",
                deadHosts: '["s2"]',
            }),
            [],
        );
    });

    it("refuses an inline SSH private key that is not a Pulumi secret, with the --secret command and without the value", () => {
        const key = crypto
            .generateKeyPairSync("ed25519")
            .privateKey.export({ type: "pkcs8", format: "pem" })
            .toString();
        const raw = { ...vmBase, sshPrivateKeyPath: "", sshPrivateKey: key };
        const plain = problemsOf(raw, "prod", { secretKeys: new Set() });
        assert.strictEqual(plain.length, 1, plain.join("\n"));
        assert.ok(plain[0].startsWith('consul:sshPrivateKey = "[not shown]": is stored in plain text'), plain[0]);
        assert.match(plain[0], /pulumi config set --secret sshPrivateKey < ~\/\.ssh\/id_ed25519/);
        assert.ok(!plain[0].includes(key.split("\n")[1]));
        assert.deepStrictEqual(problemsOf(raw, "prod", { secretKeys: new Set(["sshPrivateKey"]) }), []);
    });

    it("refuses a plain http release mirror unless releaseMirrorAllowHttp says the network is trusted", () => {
        const raw = { ...vmBase, releaseMirrorUrl: "http://mirror.internal:8080" };
        const problems = problemsOf(raw);
        assert.strictEqual(problems.length, 1, problems.join("\n"));
        assert.ok(problems[0].startsWith('consul:releaseMirrorUrl = "http://mirror.internal:8080": is plain http'));
        assert.match(problems[0], /Use https, or set consul:releaseMirrorAllowHttp to true/);
        assert.deepStrictEqual(problemsOf({ ...raw, releaseMirrorAllowHttp: "true" }), []);
        assert.strictEqual(problemsOf({ ...vmBase, releaseMirrorUrl: "ftp://mirror.internal" }).length, 1);
    });

    it("previews without the SSH key file (with a note), and refuses to deploy without it", () => {
        const raw = { ...vmBase, sshPrivateKeyPath: path.join(tmp, "absent_ed25519") };
        const settings = parseSettings(raw, "consul", "prod", { preview: true });
        assert.strictEqual(settings.notes.length, 1);
        assert.match(settings.notes[0], /no such file here\. This preview goes on without it .*pulumi up will refuse/);
        const up = problemsOf(raw, "prod", { preview: false });
        assert.strictEqual(up.length, 1);
        assert.ok(up[0].startsWith(`consul:sshPrivateKeyPath = "${raw.sshPrivateKeyPath}": no such file`), up[0]);
    });

    it("accepts an allow-by-default ACL policy only in dev/test stacks", () => {
        assert.strictEqual(parseSettings({ aclDefaultPolicy: "allow" }, "consul", "dev").acl.defaultPolicy, "allow");
        assert.strictEqual(problemsOf({ aclDefaultPolicy: "allow" }, "staging").length, 1);
    });

    it("parses Kubernetes quantities", () => {
        assert.strictEqual(parseQuantity("500m"), 0.5);
        assert.strictEqual(parseQuantity("10Gi"), 10 * 2 ** 30);
        assert.strictEqual(parseQuantity("1e3"), 1000);
        assert.strictEqual(parseQuantity("1.5G"), 1.5e9);
        assert.strictEqual(parseQuantity("-1Gi"), undefined);
        assert.strictEqual(parseQuantity("Gi"), undefined);
    });

    it("parses host entries", () => {
        assert.deepStrictEqual(parseHost("a=[::1]"), { name: "a", address: "::1", addressIsIp: true, sshPort: 22 });
        assert.deepStrictEqual(parseHost("a=::1"), { name: "a", address: "::1", addressIsIp: true, sshPort: 22 });
        assert.match(parseHost("a=[::1") as string, /never closes/);
    });
});

describe("Pulumi.yaml config schema", () => {
    it("declares every key the program reads, with the same type, default and description", () => {
        const project = yaml.load(fs.readFileSync(PULUMI_YAML, "utf8")) as { config: Record<string, unknown> };
        assert.deepStrictEqual(project.config, schemaAsProjectConfig());
    });

    // The engine treats a declared key without a default as required, so every key has one.
    it("gives every key a one-line description and a default", () => {
        for (const [key, spec] of Object.entries(configSchema)) {
            assert.ok(spec.description.length > 10 && !spec.description.includes("\n"), key);
            assert.ok("default" in spec, `${key} has no default`);
        }
    });
});
