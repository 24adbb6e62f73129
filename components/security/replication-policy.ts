// The ACL replication token of a federation (issue 15): created in the primary datacenter, used by
// a secondary's servers to replicate tokens, policies and roles (acl.tokens.replication), and by the
// secondary's own deploy steps, which never bootstrap ACLs.

import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { aclPolicyBody } from "./policy-body";
import { uuidFromDigest } from "./secret-seeds";
import { seededToken } from "./token-seed";

export const REPLICATION_POLICY_NAME = "consul-replication";

/**
 * Consul's rules for token replication, each for one reason:
 * - acl write: read and copy every token, policy and role;
 * - operator write and service_prefix "" read with intentions read: what Consul's ACL replication
 *   guide asks of the token (config entries and intentions replication);
 * - and, because it is also the secondary's admin token (its servers' root-only token file: a
 *   secondary never bootstraps, so it has no management token of its own), what the deploy steps
 *   do with that file: node_prefix "" read (`consul members`), keyring write (the keyring steps),
 *   agent_prefix "" write (`consul leave` when a server is removed or the stack destroyed).
 * acl write already lets its holder make any token, so it is as powerful as a management token.
 */
export function replicationPolicyRules(): Record<string, unknown> {
    return {
        acl: "write",
        operator: "write",
        keyring: "write",
        service_prefix: { "": { policy: "read", intentions: "read" } },
        node_prefix: { "": { policy: "read" } },
        agent_prefix: { "": { policy: "write" } },
    };
}

/** PUT /v1/acl/policy body, on one line (it travels as a script parameter). */
export function replicationPolicyBody(): string {
    return aclPolicyBody(
        REPLICATION_POLICY_NAME,
        "ACL replication to the secondary datacenters (created by Pulumi).",
        replicationPolicyRules(),
    );
}

/**
 * The replication token's fixed AccessorID: a new SecretID (the seed replaced) deletes the token
 * with this ID before creating its successor, so no old replication token outlives a rotation.
 */
export function replicationTokenAccessorId(primaryDatacenter: string): string {
    return uuidFromDigest(
        crypto.createHash("sha256").update(`consul-replication-token-accessor\0${primaryDatacenter}`).digest(),
    );
}

/** The replication token's SecretID; rotate it with `pulumi up --replace` on its seed. */
export class ReplicationToken extends pulumi.ComponentResource {
    public readonly token: pulumi.Output<string>;

    constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:ReplicationToken", name, {}, opts);
        this.token = seededToken(`${name}-seed`, this);
        this.registerOutputs({ token: this.token });
    }
}
