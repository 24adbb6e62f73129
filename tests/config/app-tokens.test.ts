// consul:appTokens (components/config/app-tokens.ts): unset by default (the settings keep their
// shape), a list of app names read sorted, and each wrong value one message naming the key, the
// value and the fix: a bad name, a name twice, another topology, ACLs off.

import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, parseSettings } from "../../components/config";
import { withPinnedKeys } from "../vm/fixtures";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "consul-app-tokens-test-"));
const keyFile = path.join(tmp, "id");
fs.writeFileSync(keyFile, "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n");
const vmBase = withPinnedKeys({
    topology: "vm",
    serverHosts: JSON.stringify(["s1=10.0.0.11"]),
    clientHosts: JSON.stringify(["c1=10.0.0.21"]),
    serverCount: "1",
    sshPrivateKeyPath: keyFile,
});

function problemsOf(raw: Record<string, string>): string[] {
    try {
        parseSettings(raw, "consul", "prod", { secretKeys: new Set() });
    } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return [...err.problems];
    }
    return [];
}

describe("appTokens config", () => {
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it("is off by default: no appTokens in the settings", () => {
        const settings = parseSettings(vmBase, "consul", "prod", { secretKeys: new Set() });
        assert.ok(!("appTokens" in settings));
        // The declared default, as the engine passes it, is the same.
        const withDefault = parseSettings({ ...vmBase, appTokens: "[]" }, "consul", "prod", { secretKeys: new Set() });
        assert.ok(!("appTokens" in withDefault));
    });

    it("reads the app names, sorted", () => {
        const settings = parseSettings({ ...vmBase, appTokens: '["web","billing-api"]' }, "consul", "prod", {
            secretKeys: new Set(),
        });
        assert.deepStrictEqual(settings.appTokens, ["billing-api", "web"]);
    });

    it("refuses a name that is not a service name, and a name listed twice", () => {
        assert.deepStrictEqual(problemsOf({ ...vmBase, appTokens: '["Web_1","web","web"]' }), [
            "consul:appTokens = \"Web_1\": must be an app's Consul service name: 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit (its KV prefix is <name>/).",
            'consul:appTokens = "web": is listed twice; list each app once.',
        ]);
    });

    it("refuses ACLs off: there is no ACL system to make tokens in", () => {
        assert.deepStrictEqual(problemsOf({ ...vmBase, aclEnabled: "false", appTokens: '["web"]' }), [
            'consul:appTokens = ["web"]: consul:aclEnabled is false, so there is no ACL system to make tokens in; remove appTokens or turn ACLs on.',
        ]);
    });

    it("refuses the kubernetes and hybrid topologies (the VM ACL step makes the tokens)", () => {
        const [problem] = problemsOf({ topology: "kubernetes", appTokens: '["web"]' });
        assert.strictEqual(
            problem,
            'consul:appTokens = ["web"]: app tokens are created by the VM ACL step (topology vm) so far, not on kubernetes; remove appTokens and give the app a token made by hand (examples/app/README.md).',
        );
    });
});
