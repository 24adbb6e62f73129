// DNS in the VM topology: the systemd-resolved drop-in rendered from its typed object, which host
// gets which DNS file, and what the program deploys with and without dnsDefaultToken and
// dnsForwarder: off, every command and bundle is as before; on, one more command (the DNS policy and
// token) that the clients wait for, and the token only in secret inputs. (Config keys:
// tests/config/dns.test.ts; on real hosts: tests/e2e/dns.e2e.ts.)

import * as assert from "assert";
import { tokenFromSeed } from "../../components/security";
import { dnsForwarderFiles, renderResolvedDropIn, resolvedDropIn } from "../../components/vm/dns";
import { nodeFiles } from "../../components/vm/host-files";
import { PATHS } from "../../components/vm/paths";
import { COMMAND_TYPE, diffCommands } from "../command-diff";
import {
    ConsulMocks,
    containsSecret,
    EvaluatedStack,
    evaluateProgram,
    RecordedResource,
    withOperatorHome,
} from "../mocks";
import { prodStackWithHosts, sampleMaterial, sampleVmSettings } from "./fixtures";

const ON = { dnsDefaultToken: "true", dnsForwarder: "systemd-resolved" };

describe("DNS forwarder and token files", () => {
    it("the drop-in routes the Consul domain, only it, to the local agent's DNS port", () => {
        const dropIn = resolvedDropIn({ domain: "consul", ports: { dns: 8600 } as never });
        assert.deepStrictEqual(dropIn, { Resolve: { DNS: "127.0.0.1:8600", Domains: "~consul" } });
        assert.strictEqual(
            renderResolvedDropIn(dropIn),
            "# Managed by consul-pulumi (dnsForwarder): the Consul domain goes to the local agent.\n" +
                "[Resolve]\nDNS=127.0.0.1:8600\nDomains=~consul\n",
        );
        const other = renderResolvedDropIn(resolvedDropIn({ domain: "acme", ports: { dns: 53 } as never }));
        assert.match(other, /^DNS=127\.0\.0\.1:53\nDomains=~acme$/m);
        assert.throws(() => resolvedDropIn({ domain: "consul", ports: { dns: -1 } as never }), /DNS port/);
    });

    it("the drop-in goes to clients only (servers hold no default token: they would answer nothing)", () => {
        const settings = sampleVmSettings();
        const dns = { defaultToken: true, forwarder: "systemd-resolved" } as const;
        assert.deepStrictEqual(dnsForwarderFiles(dns, settings, "server"), []);
        const [file, ...rest] = dnsForwarderFiles(dns, settings, "client");
        assert.deepStrictEqual(rest, []);
        assert.deepStrictEqual(
            { ...file, content: undefined },
            {
                path: PATHS.resolvedDropIn,
                mode: "0644",
                owner: "root",
                group: "root",
                content: undefined,
            },
        );
        assert.deepStrictEqual(dnsForwarderFiles({ ...dns, forwarder: "none" }, settings, "client"), []);
    });

    it("the DNS token: a client's default token in secrets.json; a server's root-only file, never its agent config", () => {
        const settings = sampleVmSettings();
        const vm = settings.vm as NonNullable<typeof settings.vm>;
        const material = { ...sampleMaterial(), dnsToken: "dns-token-secret" };
        const client = nodeFiles(settings, "client", vm.clients[0], vm.servers, material);
        const secrets = client.find((f) => f.path === PATHS.secretConfig);
        assert.strictEqual(
            (JSON.parse(String(secrets?.content)) as { acl: { tokens: Record<string, string> } }).acl.tokens.default,
            "dns-token-secret",
        );
        assert.deepStrictEqual([secrets?.mode, secrets?.owner, secrets?.group], ["0640", "root", "consul"]);
        assert.ok(!client.some((f) => f.path === PATHS.dnsTokenFile));
        const server = nodeFiles(settings, "server", vm.servers[0], vm.servers, material);
        const tokenFile = server.find((f) => f.path === PATHS.dnsTokenFile);
        assert.deepStrictEqual(tokenFile, {
            path: PATHS.dnsTokenFile,
            mode: "0600",
            owner: "root",
            group: "root",
            content: "dns-token-secret\n",
        });
        const serverSecrets = server.find((f) => f.path === PATHS.secretConfig);
        assert.ok(!String(serverSecrets?.content).includes("dns-token-secret"));
        const without = nodeFiles(settings, "client", vm.clients[0], vm.servers, sampleMaterial());
        assert.ok(!String(without.find((f) => f.path === PATHS.secretConfig)?.content).includes('"default"'));
    });
});

describe("DNS in the program, under mocks", function () {
    this.timeout(120_000);
    let operator: ReturnType<typeof withOperatorHome>;
    let off: EvaluatedStack;
    let on: EvaluatedStack;
    const commands = (r: EvaluatedStack) => r.mocks.ofType(COMMAND_TYPE);
    const byName = (r: EvaluatedStack) => new Map(commands(r).map((c) => [c.name, c]));
    const bundlePaths = (c: RecordedResource) =>
        String(c.inputs.stdin)
            .split("\n")
            .filter(Boolean)
            .map((l) => l.split(" ")[0]);
    before(async () => {
        operator = withOperatorHome();
        off = await evaluateProgram(prodStackWithHosts(3, 2), { stack: "prod" });
        on = await evaluateProgram({ ...prodStackWithHosts(3, 2), ...ON }, { stack: "prod" });
    });
    after(() => operator.restore());

    it("off: no DNS resource, no DNS file in any bundle", () => {
        assert.ok(!off.mocks.resources.some((r) => /dns/i.test(r.name) || /Dns/.test(r.type)));
        for (const c of commands(off)) {
            assert.ok(!bundlePaths(c).some((p) => p === PATHS.dnsTokenFile || p === PATHS.resolvedDropIn), c.name);
        }
    });

    it("on: servers get the token file, clients the drop-in; one more command, which the clients wait for", () => {
        const offs = byName(off);
        for (const c of commands(on).filter((c) => c.name.endsWith("-agent"))) {
            const before = offs.get(c.name) as RecordedResource;
            const added = bundlePaths(c).filter((p) => !bundlePaths(before).includes(p));
            assert.deepStrictEqual(
                added,
                c.name.includes("-server-") ? [PATHS.dnsTokenFile] : [PATHS.resolvedDropIn],
                c.name,
            );
        }
        const dnsAcl = byName(on).get("consul-vm-dns-acl") as RecordedResource;
        assert.ok(dnsAcl, "the DNS ACL step");
        assert.ok(dnsAcl.dependencies.some((urn) => urn.endsWith("::consul-vm-acl")));
        assert.ok(String(dnsAcl.inputs.create).includes("TOKEN_NAME='\"'\"'dns'\"'\"'"));
        assert.ok(String(dnsAcl.inputs.create).includes("consul-dns"));
        for (const c of commands(on).filter((c) => c.name.includes("-client-"))) {
            assert.ok(
                c.dependencies.some((urn) => urn.endsWith("::consul-vm-dns-acl")),
                `${c.name} does not wait for the DNS token`,
            );
        }
        assert.strictEqual(commands(on).length, commands(off).length + 1);
        assert.strictEqual(on.mocks.ofType("consul:index:DnsToken").length, 1);
    });

    it("on: the DNS token only in secret inputs (the bundles on stdin), never in a script", () => {
        const seed = on.mocks
            .ofType("random:index/randomPassword:RandomPassword")
            .find((r) => r.name.includes("dns-token"));
        assert.ok(seed, "the DNS token's seed");
        const token = tokenFromSeed(String(seed.state.result));
        for (const c of commands(on)) {
            assert.ok(!String(c.inputs.create).includes(token), `${c.name}: the token in its script`);
            if (!c.name.endsWith("-agent")) continue;
            // Every host's bundle carries it (clients: secrets.json; servers: the token file), as a secret.
            assert.ok(bundlePaths(c).length > 0 && containsSecret(c.rawInputs.stdin), `${c.name} stdin is not secret`);
            const files = String(c.inputs.stdin)
                .split("\n")
                .filter(Boolean)
                .map((l) => Buffer.from(l.split(" ")[4], "base64").toString("utf8"));
            assert.ok(
                files.some((f) => f.includes(token)),
                `${c.name}: the token is not in its bundle`,
            );
        }
    });

    it("on: a second deploy with no change runs nothing (no SSH session for the DNS step either)", async () => {
        const again = await evaluateProgram(
            { ...prodStackWithHosts(3, 2), ...ON },
            { stack: "prod", mocks: new ConsulMocks(on.mocks) },
        );
        assert.deepStrictEqual(
            diffCommands(on.mocks.resources, again.mocks.resources).filter((r) => r.op !== "none"),
            [],
        );
    });
});
