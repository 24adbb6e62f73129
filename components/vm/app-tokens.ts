// App tokens on the VM path (consul:appTokens): after the agent ACL step, one command per app on
// the same server upserts the app's policy and creates its token, the SecretID on stdin (no host
// file holds it). A new SecretID (the seed replaced) re-runs the step, which deletes the old token;
// the command's delete removes the token and the policy.

import * as pulumi from "@pulumi/pulumi";
import type { remote } from "@pulumi/command";
import type { Host } from "../config";
import { appPolicyBody, appPolicyName, appTokenAccessorId, AppTokens } from "../security";
import { REAL_HOST, ScriptHost } from "./paths";
import type { AclStepAccess } from "./acl-steps";
import { StdinTokenSpec, stdinTokenCommand, stdinTokenRemoveScript, stdinTokenScript } from "./acl-steps";

/** An app's token: its own policy and fixed AccessorID. */
function appTokenSpec(app: string): StdinTokenSpec {
    return {
        policyName: appPolicyName(app),
        policyJson: appPolicyBody(app),
        tokenName: `app-${app}`,
        description: `App ${app} (consul-pulumi)`,
        accessorId: appTokenAccessorId(app),
    };
}

/** The ACL step's script for one app's policy and token. Pure; `on` rebases paths, for tests only. */
export function appTokenScript(
    app: string,
    host: Host,
    httpsPort: number,
    waitSeconds: number,
    on: ScriptHost = REAL_HOST,
): string {
    return stdinTokenScript(appTokenSpec(app), { host, httpsPort, waitSeconds }, on);
}

/** The delete script: the app's token (by its AccessorID), then its policy. Pure. */
export function appTokenRemoveScript(
    app: string,
    host: Host,
    httpsPort: number,
    waitSeconds: number,
    on: ScriptHost = REAL_HOST,
): string {
    return stdinTokenRemoveScript(appTokenSpec(app), { host, httpsPort, waitSeconds }, on);
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
    // Dropped from appTokens (or the stack destroyed): no token outlives its app.
    const commands = args.apps.map((app) =>
        stdinTokenCommand(`${name}-app-token-${app}`, args, appTokenSpec(app), tokens[app], {
            parent,
            dependsOn: [args.acl],
        }),
    );
    return { tokens, commands };
}
