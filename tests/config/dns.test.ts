// The DNS keys (components/config/dns.ts): off by default (no vm.dns), read on vm, and every
// combination that cannot work refused with one message naming the key, the value and the fix.

import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, parseSettings } from "../../components/config";
import { withPinnedKeys } from "../vm/fixtures";

const keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "consul-dns-test-")), "id");
fs.writeFileSync(keyFile, "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n");
const vm = withPinnedKeys({
    topology: "vm",
    serverHosts: JSON.stringify(["s1=10.0.0.11", "s2=10.0.0.12", "s3=10.0.0.13"]),
    clientHosts: JSON.stringify(["c1=10.0.0.21", "c2=10.0.0.22"]),
    sshPrivateKeyPath: keyFile,
});

function problemsOf(raw: Record<string, string>, stack = "prod"): string[] {
    try {
        parseSettings(raw, "consul", stack);
    } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return [...err.problems];
    }
    return [];
}

describe("DNS config", () => {
    it("is off by default: no vm.dns, so the VM settings keep their shape", () => {
        const settings = parseSettings(vm, "consul", "prod");
        assert.ok(!("dns" in (settings.vm as object)));
    });

    it("reads dnsDefaultToken and dnsForwarder on vm", () => {
        const both = parseSettings(
            { ...vm, dnsDefaultToken: "true", dnsForwarder: "systemd-resolved" },
            "consul",
            "prod",
        );
        assert.deepStrictEqual(both.vm?.dns, { defaultToken: true, forwarder: "systemd-resolved" });
        const token = parseSettings({ ...vm, dnsDefaultToken: "true" }, "consul", "prod");
        assert.deepStrictEqual(token.vm?.dns, { defaultToken: true, forwarder: "none" });
    });

    it("refuses an unknown forwarder, naming the choices", () => {
        assert.deepStrictEqual(problemsOf({ ...vm, dnsDefaultToken: "true", dnsForwarder: "dnsmasq" }), [
            `consul:dnsForwarder = "dnsmasq": must be one of none, systemd-resolved.`,
        ]);
    });

    it("refuses the forwarder under deny without the DNS token: the agents would answer nothing", () => {
        const [problem, ...rest] = problemsOf({ ...vm, dnsForwarder: "systemd-resolved" });
        assert.deepStrictEqual(rest, []);
        assert.match(
            problem,
            /^consul:dnsForwarder = "systemd-resolved": would forward to agents that answer no DNS query/,
        );
        assert.match(problem, /Set consul:dnsDefaultToken to true .*or set dnsForwarder to none\.$/);
    });

    it("accepts the forwarder alone where ACLs cannot deny (ACLs off, a development stack)", () => {
        const settings = parseSettings(
            { ...vm, aclEnabled: "false", aclDefaultPolicy: "allow", dnsForwarder: "systemd-resolved" },
            "consul",
            "dev",
        );
        assert.deepStrictEqual(settings.vm?.dns, { defaultToken: false, forwarder: "systemd-resolved" });
    });

    it("refuses dnsDefaultToken with ACLs off", () => {
        const problems = problemsOf(
            { ...vm, aclEnabled: "false", aclDefaultPolicy: "allow", dnsDefaultToken: "true" },
            "dev",
        );
        assert.deepStrictEqual(problems, [
            "consul:dnsDefaultToken = true: has nothing to do with consul:aclEnabled false (every DNS query is answered already); remove it.",
        ]);
    });

    it("refuses both with the DNS interface off", () => {
        const problems = problemsOf({
            ...vm,
            dnsPort: "-1",
            dnsDefaultToken: "true",
            dnsForwarder: "systemd-resolved",
        });
        assert.strictEqual(problems.length, 2);
        assert.match(
            problems[0],
            /^consul:dnsDefaultToken = true: needs the agents' DNS interface, which consul:dnsPort -1 turns off/,
        );
        assert.match(problems[1], /^consul:dnsForwarder = "systemd-resolved": needs the agents' DNS interface/);
    });

    it("refuses them outside the vm topology, pointing at the CoreDNS doc", () => {
        const problems = problemsOf({ topology: "kubernetes", dnsDefaultToken: "true" });
        assert.deepStrictEqual(problems, [
            "consul:dnsDefaultToken = true: is only used by the vm topology, not kubernetes (client agents there are pods; docs/dns.md has the CoreDNS stub domain); remove it.",
        ]);
    });
});
