import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

/**
 * Secret IDs of the ACL tokens, made ahead of time so the agents can be configured with them
 * before the cluster exists: servers bootstrap the ACL system with `initial_management`, and the
 * agent token is created with this exact secret ID once a leader exists.
 */
export class AclTokens extends pulumi.ComponentResource {
    public readonly managementToken: pulumi.Output<string>;
    public readonly agentToken: pulumi.Output<string>;

    constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:AclTokens", name, {}, opts);
        const uuid = (token: string) =>
            pulumi.secret(
                new random.RandomUuid(`${name}-${token}`, {}, { parent: this, additionalSecretOutputs: ["result"] })
                    .result,
            );
        this.managementToken = uuid("management");
        this.agentToken = uuid("agent");
        this.registerOutputs({ managementToken: this.managementToken, agentToken: this.agentToken });
    }
}
