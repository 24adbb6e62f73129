// A federation secondary (consul:federationPrimaryStack): reads the primary's `federation` output
// through a StackReference and checks it against this stack before anything uses it.

import * as pulumi from "@pulumi/pulumi";
import { checkFederationExport, FEDERATION_OUTPUT, PrimaryMaterial, SecondaryFacts } from "./material";

/** Raised when the primary's export does not fit this secondary; `pulumi preview` shows the message. */
export class FederationError extends pulumi.RunError {
    constructor(readonly problems: readonly string[]) {
        super(
            `Federation with the primary stack refused (${problems.length} problem${problems.length === 1 ? "" : "s"}); no host was contacted:\n` +
                problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "FederationError";
    }
}

/**
 * What this secondary takes from its primary (a secret). The StackReference is read in preview
 * too, so a misfit fails `pulumi preview` with one message per problem.
 */
export function primaryMaterial(
    name: string,
    own: SecondaryFacts,
    opts?: pulumi.CustomResourceOptions,
): pulumi.Output<PrimaryMaterial> {
    const primary = new pulumi.StackReference(name, { name: own.primaryStack }, opts);
    return pulumi.secret(
        primary.getOutput(FEDERATION_OUTPUT).apply((exported: unknown) => {
            const { material, problems } = checkFederationExport(exported, own);
            if (!material) throw new FederationError(problems);
            return material;
        }),
    );
}
