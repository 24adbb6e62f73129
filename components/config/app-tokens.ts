// Application tokens (appTokens): one ACL token per listed app, scoped to the app's own service
// name and KV prefix (components/security/app-policy.ts), created on the VM path by the ACL step's
// mechanism and exported as the secret output appTokens for the app stacks' StackReference.

import type { Reader } from "./read";
import type { Topology } from "./types";

/** A Consul service name the token may register, and its KV prefix `<name>/`: a DNS label. */
export const APP_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The app names, validated; problems go to the reader. Empty when the key is unset. */
export function readAppTokens(r: Reader, topology: Topology, aclEnabled: boolean): string[] {
    const { problems, key } = r;
    const apps = r.list("appTokens");
    if (apps.length === 0) return [];
    if (topology !== "vm") {
        problems.add(
            key("appTokens"),
            apps,
            `app tokens are created by the VM ACL step (topology vm) so far, not on ${topology}; remove appTokens and give the app a token made by hand (examples/app/README.md).`,
        );
        return [];
    }
    if (!aclEnabled) {
        problems.add(
            key("appTokens"),
            apps,
            `${key("aclEnabled")} is false, so there is no ACL system to make tokens in; remove appTokens or turn ACLs on.`,
        );
        return [];
    }
    const seen = new Set<string>();
    for (const app of apps) {
        if (!APP_NAME.test(app)) {
            problems.add(
                key("appTokens"),
                app,
                "must be an app's Consul service name: 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit (its KV prefix is <name>/).",
            );
        } else if (seen.has(app)) {
            problems.add(key("appTokens"), app, "is listed twice; list each app once.");
        }
        seen.add(app);
    }
    return [...seen].sort();
}
