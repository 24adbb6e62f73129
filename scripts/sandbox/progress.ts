// The sandbox's progress: each long step says what it does, how long it took, and on a failure
// what to do next. Child scripts' own progress is passed through, indented.

import { spawn } from "child_process";

/** A failure the operator can act on: `hint` says what to do. */
export class StepError extends Error {
    constructor(
        message: string,
        readonly hint: string,
    ) {
        super(message);
    }
}

function seconds(since: number): string {
    return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

export function say(line: string): void {
    process.stdout.write(`${line}\n`);
}

/** Runs one step: "==> what", its output indented, then "    done in N s" or the failure and its hint. */
export async function step<T>(what: string, hint: string, run: () => Promise<T> | T): Promise<T> {
    const started = Date.now();
    say(`==> ${what}`);
    try {
        const result = await run();
        say(`    done in ${seconds(started)}`);
        return result;
    } catch (err) {
        const e = err instanceof StepError ? err : new StepError((err as Error).message, hint);
        throw new StepError(`${what}: failed after ${seconds(started)}: ${e.message}`, e.hint);
    }
}

/**
 * Runs a command, its stdout and stderr shown indented as they come (or, when quiet, only in the
 * error); resolves with its stdout, rejects on a non-zero exit.
 */
export function run(
    command: string,
    args: readonly string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv; quiet?: boolean } = {},
): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, {
            cwd: opts.cwd,
            env: opts.env ?? process.env,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let tail = "";
        const show = (d: Buffer) => {
            const text = d.toString();
            tail = (tail + text).slice(-2000);
            if (!opts.quiet) process.stdout.write(text.replace(/^(?=.)/gm, "    "));
        };
        child.stdout.on("data", (d: Buffer) => {
            stdout += d.toString();
            show(d);
        });
        child.stderr.on("data", show);
        child.on("error", reject);
        child.on("close", (code) => {
            if (code === 0) resolve(stdout.trim());
            else reject(new Error(`${command} ${args.join(" ")} exited ${code}${opts.quiet ? `:\n${tail}` : ""}`));
        });
    });
}

/** The last line of a script's output: where scripts/e2e's scripts print their result. */
export function lastLine(output: string): string {
    return output.split("\n").pop() ?? "";
}
