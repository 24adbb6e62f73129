// Reads this stack's config from the Pulumi runtime; everything else in config/ is pure.

import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { parseSettings } from "./parse";
import type { Settings } from "./types";

/** Reads this stack's config from the Pulumi runtime and validates it. */
export function loadSettings(): Settings {
    const project = pulumi.getProject();
    const prefix = `${project}:`;
    const raw: Record<string, string> = {};
    const kubernetesProvider: Record<string, string> = {};
    for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (fullKey.startsWith(prefix)) raw[fullKey.slice(prefix.length)] = value;
        if (fullKey.startsWith("kubernetes:")) kubernetesProvider[fullKey.slice("kubernetes:".length)] = value;
    }
    const settings = parseSettings(raw, project, pulumi.getStack(), {
        preview: pulumi.runtime.isDryRun(),
        secretKeys: secretConfigKeys(prefix, Object.keys(raw)),
        kubernetesProvider,
    });
    for (const note of settings.notes) void pulumi.log.info(note);
    return settings;
}

/**
 * Which of these keys were set with --secret. The SDK's isConfigSecret is marked internal (no
 * typings) but is what the engine's secret-key list is read through; without it, say so rather
 * than guess.
 */
function secretConfigKeys(prefix: string, keys: readonly string[]): ReadonlySet<string> {
    const isConfigSecret = (runtimeConfig as { isConfigSecret?: (fullKey: string) => boolean }).isConfigSecret;
    if (typeof isConfigSecret !== "function") {
        throw new pulumi.RunError(
            "this @pulumi/pulumi no longer exposes runtime isConfigSecret; pin the version in package.json.",
        );
    }
    return new Set(keys.filter((k) => isConfigSecret(prefix + k)));
}
