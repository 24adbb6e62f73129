import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { SEED_LENGTH, tokenFromSeed } from "./secret-seeds";

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
        // Not RandomUuid: its ID is the UUID itself, stored unencrypted in the state.
        const token = (role: string) =>
            pulumi.secret(
                new random.RandomPassword(
                    `${name}-${role}`,
                    { length: SEED_LENGTH, special: false },
                    { parent: this, additionalSecretOutputs: ["result", "bcryptHash"] },
                ).result.apply(tokenFromSeed),
            );
        this.managementToken = token("management");
        this.agentToken = token("agent");
        this.registerOutputs({ managementToken: this.managementToken, agentToken: this.agentToken });
    }
}
