// The stack's config as parseSettings takes it (key without the project prefix → the string Pulumi
// stores), from `pulumi config --json --show-secrets` or from a parsed Pulumi.<stack>.yaml.

export interface RawStackConfig {
    readonly raw: Record<string, string>;
    /** Keys set with --secret. */
    readonly secretKeys: ReadonlySet<string>;
    /** Keys the stack file holds encrypted (secure:), which a file alone cannot give. */
    readonly encrypted: readonly string[];
}

function ownKey(fullKey: string, project: string): string | undefined {
    return fullKey.startsWith(`${project}:`) ? fullKey.slice(project.length + 1) : undefined;
}

/** `pulumi config --json --show-secrets`: `{"<project>:<key>": {"value": "...", "secret": bool}}`. */
export function rawConfigFromPulumiJson(json: unknown, project: string): RawStackConfig {
    const raw: Record<string, string> = {};
    const secretKeys = new Set<string>();
    for (const [fullKey, entry] of Object.entries(json as Record<string, unknown>)) {
        const key = ownKey(fullKey, project);
        if (key === undefined) continue;
        const e = entry as { value?: unknown; objectValue?: unknown; secret?: boolean };
        if (typeof e.value === "string") raw[key] = e.value;
        else if (e.objectValue !== undefined) raw[key] = JSON.stringify(e.objectValue);
        else throw new Error(`${fullKey} has no value (was --show-secrets given?)`);
        if (e.secret) secretKeys.add(key);
    }
    return { raw, secretKeys, encrypted: [] };
}

/** A Pulumi.<stack>.yaml document (parsed): its `config:` map. */
export function rawConfigFromStackFile(doc: unknown, project: string): RawStackConfig {
    const config = ((doc ?? {}) as { config?: Record<string, unknown> }).config ?? {};
    const raw: Record<string, string> = {};
    const encrypted: string[] = [];
    for (const [fullKey, value] of Object.entries(config)) {
        const key = ownKey(fullKey, project);
        if (key === undefined) continue;
        if (value !== null && typeof value === "object" && !Array.isArray(value) && "secure" in value) {
            encrypted.push(key);
        } else if (typeof value === "string") {
            raw[key] = value;
        } else if (typeof value === "number" || typeof value === "boolean") {
            raw[key] = String(value);
        } else {
            raw[key] = JSON.stringify(value);
        }
    }
    return { raw, secretKeys: new Set(), encrypted };
}
