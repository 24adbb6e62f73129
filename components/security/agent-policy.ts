// The agent ACL policy, one definition for both topologies: the Kubernetes Job and the VM ACL step
// upsert exactly this policy, so a change to its rules reaches the existing agent token on both.

import { CLIENT_SELF_SERVICE } from "../agent";
import { aclPolicyBody } from "./policy-body";

export const AGENT_POLICY_NAME = "consul-agents";

/**
 * ACL rules of the agent token: register its node, read the catalog's services, and write its own
 * self-registration service (registered from the config file with this token, see
 * acl.tokens.config_file_service_registration).
 */
export function agentPolicyRules(): Record<string, unknown> {
    return {
        node_prefix: { "": { policy: "write" } },
        service_prefix: { "": { policy: "read" } },
        service: { [CLIENT_SELF_SERVICE]: { policy: "write" } },
    };
}

/** PUT /v1/acl/policy body, on one line (it also travels as a script parameter). */
export function agentPolicyBody(): string {
    return aclPolicyBody(
        AGENT_POLICY_NAME,
        "Consul agents: register their own node, read services (created by Pulumi).",
        agentPolicyRules(),
    );
}
