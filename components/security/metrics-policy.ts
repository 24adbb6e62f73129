// The metrics token and its policy: what a Prometheus needs to find every agent through Consul's
// catalog (consul_sd_configs) and scrape each one's /v1/agent/metrics, and nothing else: no KV, no
// service or node writes, no ACL or operator access. Checked in Consul 1.16's source: AgentMetrics
// authorises `agent:read` on the answering agent's own node name (AgentReadAllowed(NodeName)); the
// catalog and health endpoints Prometheus' Consul discovery calls drop the services the token may
// not read (service:read) and the nodes it may not read (node:read).

import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { CLIENT_SELF_SERVICE, renderJson } from "../agent";
import { SEED_LENGTH, tokenFromSeed } from "./secret-seeds";

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
    const oneLine = (value: unknown) => JSON.stringify(JSON.parse(renderJson(value)));
    return oneLine({
        Name: METRICS_POLICY_NAME,
        Description:
            "Prometheus: discover the agents (consul, consul-client services) and read their metrics (created by Pulumi).",
        Rules: oneLine(metricsPolicyRules()),
    });
}

/** The metrics token's SecretID, from its own RandomPassword seed (as SnapshotToken does). */
export class MetricsToken extends pulumi.ComponentResource {
    public readonly token: pulumi.Output<string>;

    constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:MetricsToken", name, {}, opts);
        // Not RandomUuid: its ID is the UUID itself, stored unencrypted in the state.
        const seed = new random.RandomPassword(
            `${name}-seed`,
            { length: SEED_LENGTH, special: false },
            { parent: this, additionalSecretOutputs: ["result", "bcryptHash"] },
        );
        this.token = pulumi.secret(seed.result.apply(tokenFromSeed));
        this.registerOutputs({ token: this.token });
    }
}
