// The real engine's preview of a large VM stack (scripts/engine/bench-preview.ts), if the engine is built.

import { spawnSync } from "child_process";
import * as path from "path";
import { engineMissing } from "../../tests/engine/pulumi-cli";
import { REPO_ROOT } from "../../tests/mocks";

export type EngineFigure = { kind: "measured"; ms: number; line: string } | { kind: "not measured"; why: string };

/** `env`: the environment as the benchmark found it (the engine cache is under the real HOME). */
export function enginePreview(clients: number, env: NodeJS.ProcessEnv): EngineFigure {
    if (process.env.BENCH_SKIP_ENGINE === "1") return { kind: "not measured", why: "skipped: BENCH_SKIP_ENGINE=1" };
    const missing = engineMissing(env);
    if (missing.length > 0) {
        return {
            kind: "not measured",
            why:
                `the engine is not built (missing: ${missing.join(", ")}). Build it with ` +
                "`bash scripts/engine/build.sh cli langhost stub command tls random` (about 14 min cold on 2 cores), " +
                "then run the benchmark again; BENCH_SKIP_ENGINE=1 runs it without this figure",
        };
    }
    const child = spawnSync(
        process.execPath,
        [
            require.resolve("ts-node/dist/bin"),
            "--transpile-only",
            path.join(REPO_ROOT, "scripts", "engine", "bench-preview.ts"),
            String(clients),
        ],
        { cwd: REPO_ROOT, encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"] },
    );
    const line = child.stdout.split("\n").find((l) => l.startsWith("FIGURE "));
    const ms = /\(([0-9]+) ms\)/.exec(line ?? "")?.[1];
    if (child.status !== 0 || !line || !ms) {
        return {
            kind: "not measured",
            why: `scripts/engine/bench-preview.ts exited ${child.status}:\n${(child.stdout + child.stderr).slice(-3000)}`,
        };
    }
    return { kind: "measured", ms: Number(ms), line: line.slice("FIGURE ".length) };
}
