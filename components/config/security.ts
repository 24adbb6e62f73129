// ACL and TLS settings: what the cluster trusts and for how long.

import type { Reader } from "./read";
import { DEVELOPMENT_STACKS, isDevelopmentStack } from "./stack-kind";
import type { Settings } from "./types";

export function readAcl(r: Reader, stack: string): Settings["acl"] {
    const enabled = r.bool("aclEnabled");
    const defaultPolicy = r.oneOf("aclDefaultPolicy", ["allow", "deny"] as const);
    const downPolicy = r.oneOf("aclDownPolicy", ["allow", "deny", "extend-cache", "async-cache"] as const);
    if (enabled && defaultPolicy === "allow" && !isDevelopmentStack(stack)) {
        r.problems.add(
            r.key("aclDefaultPolicy"),
            defaultPolicy,
            `an allow-by-default ACL policy is only accepted in development stacks (named ${DEVELOPMENT_STACKS}), not in stack "${stack}"; set it to deny.`,
        );
    }
    return { enabled, defaultPolicy, downPolicy };
}

export function readTls(r: Reader): Settings["tls"] {
    const { problems, key } = r;
    const caValidityHours = r.int("caValidityHours");
    const certValidityHours = r.int("certValidityHours");
    const earlyRenewalHours = r.int("certEarlyRenewalHours");
    if (caValidityHours !== undefined && (caValidityHours < 24 || caValidityHours > 20 * 8760)) {
        problems.add(
            key("caValidityHours"),
            caValidityHours,
            "must be between 24 hours and 20 years (175200); the default is 43800 (5 years).",
        );
    }
    if (certValidityHours !== undefined && (certValidityHours < 24 || certValidityHours > 5 * 8760)) {
        problems.add(
            key("certValidityHours"),
            certValidityHours,
            "must be between 24 and 43800 hours; the default is 8760 (1 year).",
        );
    } else if (
        certValidityHours !== undefined &&
        caValidityHours !== undefined &&
        certValidityHours >= caValidityHours
    ) {
        problems.add(
            key("certValidityHours"),
            certValidityHours,
            `must be shorter than caValidityHours (${caValidityHours}) so no certificate outlives its CA; lower it or raise caValidityHours.`,
        );
    }
    if (earlyRenewalHours !== undefined && certValidityHours !== undefined) {
        if (earlyRenewalHours < 0 || earlyRenewalHours >= certValidityHours) {
            problems.add(
                key("certEarlyRenewalHours"),
                earlyRenewalHours,
                `must be at least 0 and below certValidityHours (${certValidityHours}), or every pulumi up would re-issue certificates; the default is 720 (30 days).`,
            );
        }
    }
    return { caValidityHours, certValidityHours, earlyRenewalHours };
}
