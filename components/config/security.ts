// ACL and TLS settings: what the cluster trusts and for how long.

import type { Reader } from "./read";
import { DEVELOPMENT_STACKS, isDevelopmentStack } from "./stack-kind";
import type { CaSettings, Settings } from "./types";

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
    return { caValidityHours, certValidityHours, earlyRenewalHours, ca: readCa(r) };
}

/** A keeper names resources, so it is a short name. */
const KEEPER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/;

function readCa(r: Reader): CaSettings {
    const { problems, key } = r;
    const keeper = r.str("caKeeper");
    // Empty (the default) means no rotation under way.
    const previous = r.str("caPreviousKeeper") || undefined;
    const rawPhase = r.str("caRotationPhase") || undefined;
    const phase = rawPhase === "trust" || rawPhase === "reissue" ? rawPhase : undefined;
    if (rawPhase !== undefined && phase === undefined) {
        problems.add(key("caRotationPhase"), rawPhase, "must be one of trust, reissue.");
    }
    for (const [name, value] of [
        ["caKeeper", keeper],
        ["caPreviousKeeper", previous],
    ] as const) {
        if (value !== undefined && !KEEPER.test(value)) {
            problems.add(
                key(name),
                value,
                "must be 1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            );
        }
    }
    if (previous !== undefined && previous === keeper) {
        problems.add(
            key("caPreviousKeeper"),
            previous,
            "is the same as caKeeper: a rotation goes from caPreviousKeeper (the CA in use) to a new caKeeper; give caKeeper a new value.",
        );
    }
    if (previous !== undefined && rawPhase === undefined) {
        problems.add(
            key("caRotationPhase"),
            "",
            "is not set, and must be trust (first pulumi up of a CA rotation) or reissue (the second) while caPreviousKeeper is set; once every certificate is re-issued, remove both.",
        );
    }
    if (rawPhase !== undefined && previous === undefined) {
        problems.add(
            key("caRotationPhase"),
            rawPhase,
            "needs caPreviousKeeper, the keeper of the CA being rotated out; outside a rotation, remove caRotationPhase.",
        );
    }
    return {
        keeper,
        previous: previous !== undefined && phase !== undefined ? { keeper: previous, phase } : undefined,
    };
}
