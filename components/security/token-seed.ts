// One ACL token SecretID, from a RandomPassword seed of its own: shared by every token the program
// makes (agent, management, snapshot, DNS, metrics, apps).

import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { SEED_LENGTH, tokenFromSeed } from "./secret-seeds";

/** A token SecretID (secret) from the RandomPassword `resourceName`, a child of `parent`. */
export function seededToken(resourceName: string, parent: pulumi.Resource): pulumi.Output<string> {
    // Not RandomUuid: its ID is the UUID itself, stored unencrypted in the state.
    const seed = new random.RandomPassword(
        resourceName,
        { length: SEED_LENGTH, special: false },
        { parent, additionalSecretOutputs: ["result", "bcryptHash"] },
    );
    return pulumi.secret(seed.result.apply(tokenFromSeed));
}
