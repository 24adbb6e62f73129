// App tokens on the VM path (consul:appTokens): after the agent ACL step, one command per app on
// the same server upserts the app's policy and creates its token, the SecretID on stdin (no host
// file holds it). A new SecretID (the seed replaced) re-runs the step, which deletes the old token;
// the command's delete removes the token and the policy.

import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import type { Host } from "../config";
import { appPolicyBody, appPolicyName, appTokenAccessorId, AppTokens } from "../security";
import { REAL_HOST, ScriptHost } from "./paths";
import type { AclStepAccess } from "./acl-steps";
import { pathParams, renderScript, wrapForUser } from "./scripts";
import { aclScript } from "./acl-steps";

/** The ACL step's script for one app's policy and token. Pure; `on` rebases paths, for tests only. */
export function appTokenScript(
    app: string,
    host: Host,
    httpsPort: number,
    waitSeconds: number,
    on: ScriptHost = REAL_HOST,
): string {
    return aclScript(
        {
            nodeName: host.name,
            httpsPort,
            policyName: appPolicyName(app),
            policyJson: appPolicyBody(app),
            waitSeconds,
            fromStdin: {
                name: `app-${app}`,
                description: `App ${app} (consul-pulumi)`,
                accessorId: appTokenAccessorId(app),
            },
        },
        on,
    );
}

/** The delete script: the app's token (by its AccessorID), then its policy. Pure. */
export function appTokenRemoveScript(
    app: string,
    host: Host,
    httpsPort: number,
    waitSeconds: number,
    on: ScriptHost = REAL_HOST,
): string {
    return renderScript("acl-remove", `remove app ${app}'s ACL token and policy`, {
        NODE: host.name,
        HTTPS_PORT: httpsPort,
        POLICY_NAME: appPolicyName(app),
        TOKEN_NAME: `app-${app}`,
        ACCESSOR_ID: appTokenAccessorId(app),
        WAIT_SECONDS: waitSeconds,
        ...pathParams(on, []),
    });
}

/** The ACL step's access (the app steps run on its server, after its command `acl`) and the apps. */
export interface VmAppTokensArgs extends AclStepAccess {
    readonly apps: readonly string[];
    readonly acl: remote.Command;
}

/** The tokens (secret, by app) and the commands that create them. */
export function vmAppTokens(
    name: string,
    args: VmAppTokensArgs,
    parent: pulumi.Resource,
): { tokens: Readonly<Record<string, pulumi.Output<string>>>; commands: remote.Command[] } {
    const { tokens } = new AppTokens(`${name}-app-tokens`, args.apps, { parent });
    const commands = args.apps.map(
        (app) =>
            new remote.Command(
                `${name}-app-token-${app}`,
                {
                    connection: args.connection,
                    create: wrapForUser(appTokenScript(app, args.host, args.httpsPort, args.waitSeconds), args.sshUser),
                    // Dropped from appTokens (or the stack destroyed): no token outlives its app.
                    delete: wrapForUser(
                        appTokenRemoveScript(app, args.host, args.httpsPort, args.waitSeconds),
                        args.sshUser,
                    ),
                    stdin: tokens[app],
                    logging: "stdout",
                    addPreviousOutputInEnv: false,
                },
                { parent, dependsOn: [args.acl], additionalSecretOutputs: ["stdin"] },
            ),
    );
    return { tokens, commands };
}
