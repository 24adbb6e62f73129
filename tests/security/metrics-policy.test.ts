// The metrics policy: exactly what Prometheus needs (agent read for /v1/agent/metrics, node read and
// read on the two discovered services for Consul discovery), nothing that reads or writes data.

import * as assert from "assert";
import { CLIENT_SELF_SERVICE } from "../../components/agent";
import {
    METRICS_POLICY_NAME,
    METRICS_SERVICES,
    metricsPolicyBody,
    metricsPolicyRules,
    SERVER_SERVICE,
} from "../../components/security";

describe("metrics policy", () => {
    it("reads the agents, the nodes and the two discovered services, and nothing else", () => {
        assert.deepStrictEqual(metricsPolicyRules(), {
            agent_prefix: { "": { policy: "read" } },
            node_prefix: { "": { policy: "read" } },
            service: { consul: { policy: "read" }, "consul-client": { policy: "read" } },
        });
        assert.deepStrictEqual([...METRICS_SERVICES], [SERVER_SERVICE, CLIENT_SELF_SERVICE]);
    });

    it("grants no write, and no key, session, ACL, operator, keyring, event or query rule", () => {
        const text = JSON.stringify(metricsPolicyRules());
        assert.doesNotMatch(text, /"write"|"list"|"deny"/);
        for (const resource of Object.keys(metricsPolicyRules())) {
            assert.ok(["agent_prefix", "node_prefix", "service"].includes(resource), resource);
        }
    });

    it("renders the PUT /v1/acl/policy body on one line, rules as HCL-compatible JSON", () => {
        const body = metricsPolicyBody();
        assert.ok(!body.includes("\n"));
        const parsed = JSON.parse(body) as { Name: string; Description: string; Rules: string };
        assert.strictEqual(parsed.Name, METRICS_POLICY_NAME);
        assert.strictEqual(parsed.Name, "consul-metrics");
        assert.deepStrictEqual(JSON.parse(parsed.Rules), metricsPolicyRules());
    });
});
