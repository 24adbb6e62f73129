// What every part of the config reader shares: the problem list, reading a raw string by its
// declared type, and the name and address grammars.

import * as net from "net";
import * as os from "os";
import * as path from "path";
import { configSchema, ConfigKey } from "./schema";

export type RawValue = string | number | boolean | string[];

export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export function isIpAddress(text: string): boolean {
    return net.isIP(text) !== 0;
}

/** Collects problems; each names the key, the value and the fix. */
export class Problems {
    readonly list: string[] = [];
    /** Full keys set with --secret: their values are never shown. */
    constructor(private readonly secretKeys: ReadonlySet<string> = new Set()) {}
    add(key: string, value: unknown, problem: string): void {
        const shown = this.secretKeys.has(key) ? "[secret]" : JSON.stringify(value);
        this.list.push(`${key} = ${shown}: ${problem}`);
    }
}

/** Parses one raw string by its declared type; records a problem and returns undefined if it can't. */
export function readTyped(
    name: ConfigKey,
    text: string | undefined,
    problems: Problems,
    fullKey: string,
): RawValue | undefined {
    const spec = configSchema[name];
    if (text === undefined) {
        return "default" in spec ? (spec.default as RawValue) : undefined;
    }
    switch (spec.type) {
        case "string":
            return text;
        case "integer": {
            const trimmed = text.trim();
            if (!/^-?\d+$/.test(trimmed) || !Number.isSafeInteger(parseInt(trimmed, 10))) {
                problems.add(fullKey, text, "must be a whole number (below 2^53).");
                return undefined;
            }
            return parseInt(trimmed, 10);
        }
        case "boolean":
            if (text !== "true" && text !== "false") {
                problems.add(fullKey, text, "must be true or false.");
                return undefined;
            }
            return text === "true";
        case "array": {
            let parsed: unknown;
            try {
                parsed = JSON.parse(text);
            } catch {
                parsed = undefined;
            }
            if (!Array.isArray(parsed) || parsed.some((item) => typeof item !== "string")) {
                problems.add(fullKey, text, "must be a list of strings (a YAML sequence in the stack file).");
                return undefined;
            }
            return parsed as string[];
        }
    }
}

/** A path from the stack config, with a leading ~/ meaning the home directory. */
export function expandHome(p: string): string {
    return p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

/** The config values by their declared types, and where problems with them go. */
export interface Reader {
    /** Raw strings as the stack stores them, by key without the project prefix. */
    readonly raw: Readonly<Record<string, string>>;
    readonly problems: Problems;
    /** The full key (`<project>:<name>`), as problems name it. */
    readonly key: (name: string) => string;
    readonly str: (name: ConfigKey) => string;
    readonly int: (name: ConfigKey) => number;
    readonly bool: (name: ConfigKey) => boolean;
    /** An array key; empty when unset or unreadable (its problem is recorded once). */
    readonly list: (name: ConfigKey) => string[];
    /** A string key that must be one of `allowed`. */
    readonly oneOf: <T extends string>(name: ConfigKey, allowed: readonly T[]) => T;
}

/** Reads every declared key once; type problems are recorded here, range problems by each parser. */
export function createReader(
    raw: Readonly<Record<string, string>>,
    project: string,
    secretKeys: ReadonlySet<string>,
): Reader {
    const key = (name: string) => `${project}:${name}`;
    const problems = new Problems(new Set([...secretKeys].map(key)));
    const typed = new Map<ConfigKey, RawValue | undefined>();
    for (const name of Object.keys(configSchema) as ConfigKey[]) {
        typed.set(name, readTyped(name, raw[name], problems, key(name)));
    }
    const get = <T extends RawValue>(name: ConfigKey): T => typed.get(name) as T;
    const str = (name: ConfigKey) => get<string>(name);
    return {
        raw,
        problems,
        key,
        str,
        int: (name) => get<number>(name),
        bool: (name) => get<boolean>(name),
        list: (name) => get<string[]>(name) ?? [],
        oneOf: <T extends string>(name: ConfigKey, allowed: readonly T[]): T => {
            const value = str(name);
            if (value !== undefined && !allowed.includes(value as T)) {
                problems.add(key(name), value, `must be one of ${allowed.join(", ")}.`);
            }
            return value as T;
        },
    };
}
