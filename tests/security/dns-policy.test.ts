// The DNS policy (components/security/dns-policy.ts): exactly node and service read, because Consul
// 1.16 hands the clients' default token to every HTTP request that carries none.

import * as assert from "assert";
import { DNS_POLICY_NAME, dnsPolicyBody, dnsPolicyRules } from "../../components/security";

describe("DNS policy", () => {
    it("reads every node and service, and nothing else", () => {
        assert.deepStrictEqual(dnsPolicyRules(), {
            node_prefix: { "": { policy: "read" } },
            service_prefix: { "": { policy: "read" } },
        });
    });

    it("the ACL API body: one line, the name, the rules as a JSON string Consul parses as HCL/JSON", () => {
        const body = dnsPolicyBody();
        assert.ok(!body.includes("\n"));
        const parsed = JSON.parse(body) as { Name: string; Description: string; Rules: string };
        assert.strictEqual(parsed.Name, DNS_POLICY_NAME);
        assert.strictEqual(parsed.Name, "consul-dns");
        assert.deepStrictEqual(JSON.parse(parsed.Rules), dnsPolicyRules());
        assert.match(parsed.Description, /token-less HTTP requests .* read the catalog/);
        // No other rule family a default token could lend to an anonymous request.
        for (const family of ["key", "key_prefix", "acl", "operator", "agent", "agent_prefix", "query_prefix"]) {
            assert.ok(!(family in JSON.parse(parsed.Rules)), family);
        }
    });
});
