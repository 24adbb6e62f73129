// The app token's policy (components/security/app-policy.ts): its own service (write), its own KV
// prefix with the trailing slash (so "web" cannot write "webshop/"), read on services and nodes,
// nothing else; the body the ACL API takes; a fixed, well-formed AccessorID per app.

import * as assert from "assert";
import {
    appKvPrefix,
    appPolicyBody,
    appPolicyName,
    appPolicyRules,
    appTokenAccessorId,
} from "../../components/security/app-policy";

describe("app token policy", () => {
    it("allows its own service and KV prefix, and reading the catalog; nothing else", () => {
        assert.deepStrictEqual(appPolicyRules("web"), {
            service: { web: { policy: "write" } },
            key_prefix: { "web/": { policy: "write" } },
            service_prefix: { "": { policy: "read" } },
            node_prefix: { "": { policy: "read" } },
        });
        assert.strictEqual(appKvPrefix("web"), "web/");
    });

    it("is the ACL API's policy body on one line, the rules as a JSON string", () => {
        const body = appPolicyBody("web");
        assert.ok(!body.includes("\n"));
        const parsed = JSON.parse(body) as { Name: string; Description: string; Rules: string };
        assert.strictEqual(parsed.Name, appPolicyName("web"));
        assert.strictEqual(parsed.Name, "consul-app-web");
        assert.deepStrictEqual(JSON.parse(parsed.Rules), appPolicyRules("web"));
        assert.match(parsed.Description, /register service web, write KV under web\//);
    });

    it("gives each app a fixed version 4 form AccessorID of its own", () => {
        const web = appTokenAccessorId("web");
        assert.match(web, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.strictEqual(appTokenAccessorId("web"), web);
        assert.notStrictEqual(appTokenAccessorId("api"), web);
    });
});
