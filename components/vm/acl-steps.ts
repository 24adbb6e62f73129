// A policy-and-token step on the ACL step's server, after the agent's: the snapshot and metrics
// tokens each have one (the DNS token's is a plan step, the apps' are in ./app-tokens.ts). Each is
// its own command, so a re-run with nothing changed opens no SSH session.

import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import type { Host } from "../config";
import { aclScript, AclScriptParams, wrapForUser } from "./scripts";

/** How the token steps reach the ACL step's server. */
export interface AclStepAccess {
    readonly host: Host;
    readonly connection: remote.CommandArgs["connection"];
    readonly sshUser: string;
    readonly httpsPort: number;
    readonly waitSeconds: number;
}

/**
 * Upserts `policy` and creates the `token` with it. The SecretID is in the token's file on the
 * host, or, given `stdin` (a secret), on the command's stdin and in no host file.
 */
export function tokenAclCommand(
    name: string,
    access: AclStepAccess,
    token: NonNullable<AclScriptParams["token"]>,
    policy: { readonly name: string; readonly json: string },
    opts: pulumi.CustomResourceOptions,
    stdin?: pulumi.Output<string>,
): remote.Command {
    const script = aclScript({
        nodeName: access.host.name,
        httpsPort: access.httpsPort,
        policyName: policy.name,
        policyJson: policy.json,
        waitSeconds: access.waitSeconds,
        token,
    });
    return new remote.Command(
        name,
        {
            connection: access.connection,
            create: wrapForUser(script, access.sshUser),
            ...(stdin ? { stdin } : {}),
            logging: "stdout",
            addPreviousOutputInEnv: false,
        },
        stdin ? { ...opts, additionalSecretOutputs: ["stdin"] } : opts,
    );
}
