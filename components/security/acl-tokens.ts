import * as pulumi from "@pulumi/pulumi";
import { seededToken } from "./token-seed";

/**
 * Secret IDs of the ACL tokens, made ahead of time so the agents can be configured with them
 * before the cluster exists: servers bootstrap the ACL system with `initial_management`, and the
 * agent token is created with this exact secret ID once a leader exists.
 */
export class AclTokens extends pulumi.ComponentResource {
    /** Absent in a federation secondary, which never bootstraps ACLs (the primary's is global). */
    public readonly managementToken?: pulumi.Output<string>;
    public readonly agentToken: pulumi.Output<string>;

    constructor(name: string, args: { readonly management: boolean }, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:AclTokens", name, {}, opts);
        // Not RandomUuid: its ID is the UUID itself, stored unencrypted in the state.
        const token = (role: string) => seededToken(`${name}-${role}`, this);
        if (args.management) this.managementToken = token("management");
        this.agentToken = token("agent");
        this.registerOutputs({ managementToken: this.managementToken, agentToken: this.agentToken });
    }
}
