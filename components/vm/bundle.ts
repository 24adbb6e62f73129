// The files the apply script writes, as the bundle it reads on stdin.

import * as crypto from "crypto";

/** One file the apply script writes. */
export interface NodeFile {
    readonly path: string;
    /** Octal, four digits. */
    readonly mode: string;
    readonly owner: "root" | "consul";
    readonly group: "root" | "consul";
    readonly content: string;
}

/**
 * The stdin bundle: one line per file, `<path> <mode> <owner> <group> <base64>`. Sorted, so the
 * same files always give the same bundle (and digest).
 */
export function renderBundle(files: readonly NodeFile[]): string {
    const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const seen = new Set<string>();
    return sorted
        .map((f) => {
            if (!/^\/[a-z0-9._/-]+$/.test(f.path) || f.path.includes("..")) throw new Error(`bad file path ${f.path}`);
            if (!/^[0-7]{4}$/.test(f.mode)) throw new Error(`bad mode ${f.mode} for ${f.path}`);
            if (seen.has(f.path)) throw new Error(`file ${f.path} twice in one bundle`);
            seen.add(f.path);
            return `${f.path} ${f.mode} ${f.owner} ${f.group} ${Buffer.from(f.content, "utf8").toString("base64")}\n`;
        })
        .join("");
}

export function sha256Hex(text: string): string {
    return crypto.createHash("sha256").update(text, "utf8").digest("hex");
}
