// Application tokens (consul:appTokens): each listed app gets a policy that lets it register its
// own service and write KV under its own prefix, and read the catalog to find others, nothing
// more; and a token whose SecretID comes from its own RandomPassword seed (seededToken).
// The AccessorID is fixed by the app's name, so a rotated SecretID (a replaced seed) takes the
// place of the old token, which the ACL step deletes, rather than adding a second token.

import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { aclPolicyBody } from "./policy-body";
import { uuidFromDigest } from "./secret-seeds";
import { seededToken } from "./token-seed";

/** The app's policy name in Consul. */
export function appPolicyName(app: string): string {
    return `consul-app-${app}`;
}

/** The app's KV prefix: its name and a slash, so `web` cannot write `webshop/...`. */
export function appKvPrefix(app: string): string {
    return `${app}/`;
}

/** ACL rules: write its own service and KV prefix; read services and nodes (discovery). */
export function appPolicyRules(app: string): Record<string, unknown> {
    return {
        service: { [app]: { policy: "write" } },
        key_prefix: { [appKvPrefix(app)]: { policy: "write" } },
        service_prefix: { "": { policy: "read" } },
        node_prefix: { "": { policy: "read" } },
    };
}

/** PUT /v1/acl/policy body, on one line (it travels as a script parameter). */
export function appPolicyBody(app: string): string {
    return aclPolicyBody(
        appPolicyName(app),
        `App ${app}: register service ${app}, write KV under ${appKvPrefix(app)}, read the catalog (created by Pulumi).`,
        appPolicyRules(app),
    );
}

/** The app token's AccessorID: a version 4 form UUID from the app's name (not a secret). */
export function appTokenAccessorId(app: string): string {
    return uuidFromDigest(crypto.createHash("sha256").update(`consul-app-token-accessor\0${app}`).digest());
}

/** One SecretID per app, secret; rotate one with `pulumi up --replace` on its seed. */
export class AppTokens extends pulumi.ComponentResource {
    public readonly tokens: Readonly<Record<string, pulumi.Output<string>>>;

    constructor(name: string, apps: readonly string[], opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:AppTokens", name, {}, opts);
        const tokens: Record<string, pulumi.Output<string>> = {};
        for (const app of apps) {
            tokens[app] = seededToken(`${name}-${app}`, this);
        }
        this.tokens = tokens;
        this.registerOutputs({});
    }
}
