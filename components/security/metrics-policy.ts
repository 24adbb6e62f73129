// The metrics token and its policy: what a Prometheus needs to find every agent through Consul's
// catalog (consul_sd_configs) and scrape each one's /v1/agent/metrics, and nothing else: no KV, no
// service or node writes, no ACL or operator access. Checked in Consul 1.16's source: AgentMetrics
// authorises `agent:read` on the answering agent's own node name (AgentReadAllowed(NodeName)); the
// catalog and health endpoints Prometheus' Consul discovery calls drop the services the token may
// not read (service:read) and the nodes it may not read (node:read).

import * as pulumi from "@pulumi/pulumi";
import { CLIENT_SELF_SERVICE } from "../agent";
import { aclPolicyBody } from "./policy-body";
import { seededToken } from "./token-seed";

export const METRICS_POLICY_NAME = "consul-metrics";

/** The service every server registers by itself; its instances are the servers. */
export const SERVER_SERVICE = "consul";

/** The services Prometheus discovers: the servers' built-in one and the clients' self-registration. */
export const METRICS_SERVICES = [SERVER_SERVICE, CLIENT_SELF_SERVICE] as const;

/**
 * The metrics token's rules, each for one reason:
 * - agent_prefix "" read: /v1/agent/metrics on every agent (each checks its own node name; the
 *   agents are every node, so a prefix, not a list that would go stale as hosts come and go);
 * - node_prefix "" read: the health and catalog answers list an instance only if its node is readable;
 * - service read on the two discovered services only: any other service stays invisible.
 */
export function metricsPolicyRules(): Record<string, unknown> {
    return {
        agent_prefix: { "": { policy: "read" } },
        node_prefix: { "": { policy: "read" } },
        service: Object.fromEntries(METRICS_SERVICES.map((name) => [name, { policy: "read" }])),
    };
}

/** PUT /v1/acl/policy body, on one line (it travels as a script parameter). */
export function metricsPolicyBody(): string {
    return aclPolicyBody(
        METRICS_POLICY_NAME,
        "Prometheus: discover the agents (consul, consul-client services) and read their metrics (created by Pulumi).",
        metricsPolicyRules(),
    );
}

/** The metrics token's SecretID, from its own RandomPassword seed (seededToken). */
export class MetricsToken extends pulumi.ComponentResource {
    public readonly token: pulumi.Output<string>;

    constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:MetricsToken", name, {}, opts);
        this.token = seededToken(`${name}-seed`, this);
        this.registerOutputs({ token: this.token });
    }
}
