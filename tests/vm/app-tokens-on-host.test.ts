// The app token's ACL step (components/vm/app-tokens.ts, the ACL script with fromStdin) on a fake
// host (tests/vm/fake-host.ts): the SecretID arrives on stdin and never on an argument or in the
// output; the token gets the app's fixed AccessorID; a new SecretID deletes the old token first;
// a working token is left alone; stdin that is not a SecretID fails before any request. The
// engine suite (tests/engine/app-stack.e2e.ts) runs it against Consul itself.

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { appPolicyBody, appPolicyName, appTokenAccessorId } from "../../components/security/app-policy";
import { appTokenRemoveScript, appTokenScript } from "../../components/vm/app-tokens";
import { CurlRequest, FakeHost, Run } from "./fake-host";
import { sampleMaterial } from "./fixtures";

const AGENT = "https://127.0.0.1:8501";
const APP = "web";
const ACCESSOR = appTokenAccessorId(APP);
const NEW = "0b3c4d5e-6f70-4182-9a3b-4c5d6e7f8091";

describe("app token ACL step on a fake host", function () {
    this.timeout(60_000);
    const managementToken = String(sampleMaterial().managementToken);
    const mgmt = { token: managementToken };
    let host: FakeHost;
    beforeEach(() => {
        host = new FakeHost();
        fs.mkdirSync(path.dirname(host.paths.managementTokenFile), { recursive: true });
        fs.writeFileSync(host.paths.managementTokenFile, managementToken, { mode: 0o600 });
        host.respond("/v1/status/leader", '"10.0.0.11:8300"');
        host.respond("/v1/acl/token/self", '{"AccessorID":"a-1"}', mgmt);
        host.respond(
            `/v1/acl/policy/name/${appPolicyName(APP)}`,
            `{"ID":"pol-1","Name":"${appPolicyName(APP)}"}`,
            mgmt,
        );
        host.respond("/v1/acl/policy/pol-1", '{"ID":"pol-1"}', { method: "PUT", ...mgmt });
        host.respond("/v1/acl/token", `{"AccessorID":"${ACCESSOR}"}`, { method: "PUT", ...mgmt });
        host.respond(`/v1/acl/token/${ACCESSOR}`, "true", { method: "DELETE", ...mgmt });
    });
    afterEach(() => host.remove());

    const script = () => appTokenScript(APP, { name: "s1" } as never, 8501, 5, host.host);
    const requests = (run: Run) => run.requests.map((r) => `${r.method} ${r.url.replace(AGENT, "")}`);
    const writes = (run: Run) => run.requests.filter((r) => r.method !== "GET");
    const withManagementToken = (r: CurlRequest) =>
        assert.strictEqual(r.config, `header = "X-Consul-Token: ${managementToken}"\n`, `${r.method} ${r.url}`);
    const noSecret = (run: Run) => {
        const seen = [run.stdout, run.stderr, ...run.calls, ...run.requests.flatMap((r) => r.argv)].join("\n");
        for (const s of [NEW, managementToken]) assert.ok(!seen.includes(s), "a token was printed or on argv");
        assert.deepStrictEqual(
            host.tree().filter((p) => /^\/tmp\/./.test(p)),
            [],
            "the work directory (with the SecretID) is left",
        );
    };

    it("a first run upserts the app's policy and creates its token with the fixed AccessorID and the SecretID from stdin", () => {
        const run = host.run(script(), NEW + "\n");
        assert.strictEqual(run.status, 0, run.stderr);
        assert.strictEqual(run.stdout, `s1 acl: policy ${appPolicyName(APP)} updated\ns1 acl: app-web token created\n`);
        assert.deepStrictEqual(requests(run), [
            "GET /v1/status/leader",
            "GET /v1/acl/token/self",
            `GET /v1/acl/policy/name/${appPolicyName(APP)}`,
            "PUT /v1/acl/policy/pol-1",
            "GET /v1/acl/token/self",
            `GET /v1/acl/token/${ACCESSOR}`,
            "PUT /v1/acl/token",
        ]);
        const [policy, token] = writes(run);
        assert.strictEqual(policy.body, appPolicyBody(APP));
        assert.deepStrictEqual(JSON.parse(token.body ?? ""), {
            AccessorID: ACCESSOR,
            SecretID: NEW,
            Description: "App web (consul-pulumi)",
            Policies: [{ Name: appPolicyName(APP) }],
        });
        writes(run).forEach(withManagementToken);
        // The new token was checked with itself.
        assert.strictEqual(run.requests[4].config, `header = "X-Consul-Token: ${NEW}"\n`);
        noSecret(run);
    });

    it("a new SecretID (a rotation) deletes the token with the app's AccessorID, then creates it anew", () => {
        host.respond(`/v1/acl/token/${ACCESSOR}`, `{"AccessorID":"${ACCESSOR}"}`, mgmt);
        const run = host.run(script(), NEW);
        assert.strictEqual(run.status, 0, run.stderr);
        assert.match(run.stdout, /s1 acl: previous app-web token deleted\ns1 acl: app-web token created\n$/);
        assert.deepStrictEqual(
            writes(run).map((r) => `${r.method} ${r.url.replace(AGENT, "")}`),
            ["PUT /v1/acl/policy/pol-1", `DELETE /v1/acl/token/${ACCESSOR}`, "PUT /v1/acl/token"],
        );
        writes(run).forEach(withManagementToken);
        noSecret(run);
    });

    it("a working token is left alone (only the policy is upserted)", () => {
        host.respond("/v1/acl/token/self", `{"AccessorID":"${ACCESSOR}"}`, { token: NEW });
        const run = host.run(script(), NEW);
        assert.strictEqual(run.status, 0, run.stderr);
        assert.match(run.stdout, /s1 acl: app-web token exists\n$/);
        assert.deepStrictEqual(
            writes(run).map((r) => r.method),
            ["PUT"],
        );
        noSecret(run);
    });

    it("stdin that is not a SecretID fails before any request", () => {
        const run = host.run(script(), "not-a-token\n");
        assert.strictEqual(run.status, 1);
        assert.match(run.stderr, /s1 acl: FAILED: stdin does not hold a token SecretID \(a UUID\)/);
        assert.deepStrictEqual(run.requests, []);
    });

    describe("its delete (the app left appTokens, or the stack is destroyed)", () => {
        const remove = () => appTokenRemoveScript(APP, { name: "s1" } as never, 8501, 5, host.host);
        const POLICY = `/v1/acl/policy/name/${appPolicyName(APP)}`;

        it("deletes the token by its AccessorID, then the policy by its ID, with the management token", () => {
            host.respond(`/v1/acl/token/${ACCESSOR}`, `{"AccessorID":"${ACCESSOR}"}`, mgmt);
            host.respond("/v1/acl/policy/pol-1", "true", { method: "DELETE", ...mgmt });
            const run = host.run(remove());
            assert.strictEqual(run.status, 0, run.stderr);
            assert.strictEqual(
                run.stdout,
                `s1 acl-remove: the app-web token deleted\ns1 acl-remove: policy ${appPolicyName(APP)} deleted\n`,
            );
            assert.deepStrictEqual(
                writes(run).map((r) => `${r.method} ${r.url.replace(AGENT, "")}`),
                [`DELETE /v1/acl/token/${ACCESSOR}`, "DELETE /v1/acl/policy/pol-1"],
            );
            writes(run).forEach(withManagementToken);
            noSecret(run);
        });

        it("is a no-op when both are already gone", () => {
            host.respondWith(POLICY, "exit 22", mgmt);
            const run = host.run(remove());
            assert.strictEqual(run.status, 0, run.stderr);
            assert.match(
                run.stdout,
                /the app-web token is already gone\ns1 acl-remove: policy consul-app-web is already gone\n$/,
            );
            assert.deepStrictEqual(writes(run), []);
        });
    });
});
