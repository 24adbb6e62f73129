// The Pulumi side of the sandbox: a file backend and a passphrase of its own under the sandbox
// directory, the CLI built here (scripts/engine/build.sh) when none is on PATH, the `sandbox`
// stack created in that backend, and env.sh, which points a shell at all of it.

import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { shellQuote } from "../../components/shell";
import { ENGINE_BUILD, engineCacheDir, enginePlugins, VM_ENGINE_COMPONENTS } from "../engine/engine-cache";
import { run } from "./progress";

export const STACK = "sandbox";

export interface Backend {
    /** The environment `pulumi` runs with, for the sandbox's own calls and in env.sh. */
    readonly env: Readonly<Record<string, string>>;
    /** The CLI was built here (its directory is put first on PATH). */
    readonly builtHere: boolean;
}

/** Whether a `pulumi` is on the caller's PATH. */
export function pulumiOnPath(): boolean {
    return spawnSync("sh", ["-c", "command -v pulumi"], { stdio: "ignore" }).status === 0;
}

/** Builds what a VM stack needs of the engine (cached by version: seconds when built before). */
export async function buildEngine(): Promise<string> {
    await run("bash", [ENGINE_BUILD, ...VM_ENGINE_COMPONENTS]);
    return engineCacheDir();
}

/**
 * The backend's directories and the passphrase file (0600), and, when the CLI was built here, a
 * PULUMI_HOME with the providers built with it.
 */
export async function prepareBackend(dir: string, engineCache: string | undefined): Promise<Backend> {
    const state = path.join(dir, "state");
    fs.mkdirSync(state, { recursive: true });
    const passphraseFile = path.join(dir, "passphrase");
    if (!fs.existsSync(passphraseFile)) {
        fs.writeFileSync(passphraseFile, crypto.randomBytes(24).toString("hex"), { mode: 0o600 });
    }
    const env: Record<string, string> = {
        PULUMI_BACKEND_URL: `file://${state}`,
        PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
    };
    if (engineCache) {
        Object.assign(env, {
            PATH: `${path.join(engineCache, "bin")}:${process.env.PATH ?? ""}`,
            PULUMI_HOME: path.join(dir, "pulumi-home"),
            PULUMI_SKIP_UPDATE_CHECK: "1",
            // No plugin can be downloaded on such a machine: fail on a missing one instead of trying.
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        });
        for (const plugin of enginePlugins(engineCache)) {
            await pulumi(env, ["plugin", "install", "resource", plugin.name, plugin.version, "--file", plugin.file]);
        }
    }
    return { env, builtHere: engineCache !== undefined };
}

/** Runs the CLI with the backend's environment; output shown only on a failure. */
export function pulumi(env: Readonly<Record<string, string>>, args: string[], cwd?: string): Promise<string> {
    return run("pulumi", [...args, "--non-interactive"], { cwd, env: { ...process.env, ...env }, quiet: true });
}

/** Creates the stack in the backend, unless it is there already. */
export async function ensureStack(backend: Backend, projectDir: string): Promise<void> {
    const listed = JSON.parse(await pulumi(backend.env, ["stack", "ls", "--json"], projectDir)) as { name: string }[];
    if (listed.some((s) => s.name === STACK)) return;
    await pulumi(backend.env, ["stack", "init", STACK, "--secrets-provider", "passphrase"], projectDir);
}

/** env.sh: `. <dir>/env.sh` points a shell's `pulumi` at the sandbox's backend (and CLI). */
export function renderEnvFile(backend: Backend): string {
    const lines = [
        "# Written by `npm run sandbox -- up`: the sandbox's Pulumi backend and passphrase file",
        backend.builtHere ? "# and the CLI built from Go modules (scripts/engine/build.sh)." : "# (the CLI is yours).",
        ...Object.entries(backend.env).map(([name, value]) =>
            name === "PATH"
                ? `export PATH=${shellQuote(value.slice(0, value.indexOf(":")))}:"$PATH"`
                : `export ${name}=${shellQuote(value)}`,
        ),
    ];
    return `${lines.join("\n")}\n`;
}
