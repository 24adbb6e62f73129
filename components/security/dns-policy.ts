// The DNS token and its policy (dnsDefaultToken on). Under aclDefaultPolicy deny a Consul 1.16 agent
// answers DNS with its default token (acl.tokens.default) or, without one, as anonymous: nothing.
// The `dns` token type that DNS alone uses arrived in 1.17, so the default token it is, and 1.16
// also uses that token for every HTTP request that carries none (HTTPHandlers.parseToken falls back
// to tokens.UserToken()). Hence the rules: node and service read, the least DNS needs, nothing else
// (no query_prefix: prepared queries are not used; no key, acl, operator or agent rules).

import * as pulumi from "@pulumi/pulumi";
import { aclPolicyBody } from "./policy-body";
import { seededToken } from "./token-seed";

export const DNS_POLICY_NAME = "consul-dns";

/** Read every node and service: what `<service>.service.<domain>` and `<node>.node.<domain>` need. */
export function dnsPolicyRules(): Record<string, unknown> {
    return {
        node_prefix: { "": { policy: "read" } },
        service_prefix: { "": { policy: "read" } },
    };
}

/** PUT /v1/acl/policy body, on one line (it travels as a script parameter). */
export function dnsPolicyBody(): string {
    return aclPolicyBody(
        DNS_POLICY_NAME,
        "Consul DNS: read nodes and services. Client agents hold it as their default token, so token-less HTTP requests to them read the catalog too (created by Pulumi).",
        dnsPolicyRules(),
    );
}

/** The DNS token's SecretID, from its own RandomPassword seed (seededToken). */
export class DnsToken extends pulumi.ComponentResource {
    public readonly token: pulumi.Output<string>;

    constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:DnsToken", name, {}, opts);
        this.token = seededToken(`${name}-seed`, this);
        this.registerOutputs({ token: this.token });
    }
}
