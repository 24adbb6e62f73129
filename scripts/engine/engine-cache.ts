// Where scripts/engine/build.sh caches the engine, and the provider plugins a VM stack installs
// from it: shared by the engine suite (tests/engine/pulumi-cli.ts) and the sandbox
// (scripts/sandbox), so both run the same binaries.

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const REPO_ROOT = path.join(__dirname, "..", "..");
export const ENGINE_BUILD = path.join(REPO_ROOT, "scripts", "engine", "build.sh");
/** What a VM stack needs of build.sh: the CLI, the language host and the providers its resources use. */
export const VM_ENGINE_COMPONENTS = ["cli", "langhost", "stub", "command", "tls", "random"];

/** The engine cache directory build.sh uses (by the versions it builds). */
export function engineCacheDir(env: NodeJS.ProcessEnv = process.env): string {
    const r = spawnSync("bash", [ENGINE_BUILD, "--print-cache-dir"], { encoding: "utf8", env });
    if (r.status !== 0) throw new Error(`scripts/engine/build.sh --print-cache-dir failed: ${r.stderr}`);
    return r.stdout.trim();
}

export interface EnginePlugin {
    readonly name: string;
    readonly version: string;
    /** The binary `pulumi plugin install resource <name> <version> --file` takes. */
    readonly file: string;
}

/**
 * The resource plugins the program's imports declare, at the npm SDKs' versions, from the cache.
 * A VM stack registers no Kubernetes resource: the preview-only stub stands in for that plugin,
 * and fails loudly if it is ever asked to create anything.
 */
export function enginePlugins(cache: string): EnginePlugin[] {
    const deps = (
        JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
            dependencies: Record<string, string>;
        }
    ).dependencies;
    return ["command", "tls", "random", "kubernetes"].map((name) => {
        const version = deps[`@pulumi/${name}`];
        const built = path.join(
            cache,
            "pulumi-home",
            "plugins",
            `resource-${name}-v${version}`,
            `pulumi-resource-${name}`,
        );
        const file = fs.existsSync(built) ? built : path.join(cache, "bin", "pulumi-resource-stub");
        return { name, version, file };
    });
}
