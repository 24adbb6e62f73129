// The snapshot token and its policy (VM servers, snapshots on). Consul authorises GET and PUT
// /v1/snapshot with one ACL sense, `acl = "write"` (policyAuthorizer.Snapshot in Consul's acl
// package: "reading gets you all the ACLs and you could escalate from there"), so this token can
// mint any other token: it is as powerful as the management token. What a separate token buys is
// not a smaller scope but a separate secret: it can be revoked and replaced on its own, and the
// management token is never read by the timer. `operator = "read"` is for the leader check
// (/v1/operator/raft/configuration), so only the leader's run saves.

import * as pulumi from "@pulumi/pulumi";
import { aclPolicyBody } from "./policy-body";
import { seededToken } from "./token-seed";

export const SNAPSHOT_POLICY_NAME = "consul-snapshots";

/** The rules of the snapshot token: what /v1/snapshot requires, and reading the Raft configuration. */
export function snapshotPolicyRules(): Record<string, unknown> {
    return { acl: "write", operator: "read" };
}

/** PUT /v1/acl/policy body, on one line (it travels as a script parameter). */
export function snapshotPolicyBody(): string {
    return aclPolicyBody(
        SNAPSHOT_POLICY_NAME,
        "Consul snapshots: save and restore need acl write, so this token is as strong as the management token (created by Pulumi).",
        snapshotPolicyRules(),
    );
}

/** The snapshot token's SecretID, from its own RandomPassword seed (seededToken). */
export class SnapshotToken extends pulumi.ComponentResource {
    public readonly token: pulumi.Output<string>;

    constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:SnapshotToken", name, {}, opts);
        this.token = seededToken(`${name}-seed`, this);
        this.registerOutputs({ token: this.token });
    }
}
