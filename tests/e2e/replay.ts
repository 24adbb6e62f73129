// Replays the program's `command:remote:Command` resources over real SSH, as the command provider
// (pulumi-command 1.x, provider/pkg/provider/remote) would run them, while the rest of the engine
// stays mocked (tls/random give real material, see ../mocks.ts). Each command runs inside the
// mock's `newResource`: the SDK registers a resource only after what it depends on has been
// registered, and a registration completes only when its command has finished, so dependencies are
// honoured as the engine honours them.
//
// Between deploys the provider's diff rules apply (`diffOp` in ../command-diff.ts): no input
// changed → nothing; `triggers` changed → replace (create the new one now, delete the old one at
// the end; with the deleteBeforeReplace option, delete the old one first); any other change (`connection` included) → update (`update`, else `create`); gone →
// delete (at the end, newest first), unless it was registered with retainOnDelete; ignoreChanges keeps
// the stored value of each property it names (../mocks.ts). A failed deploy keeps the previous state of the failed resource
// and of everything that was not reached, and deletes nothing, as the engine does.

import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { COMMAND_TYPE, CommandOp, CommandRun, diffOp, sessionsPerHost } from "../command-diff";
import * as assert from "assert";
import { ConsulMocks, evaluateProgram, RecordedResource } from "../mocks";

interface Connection {
    host: string;
    port?: number;
    user?: string;
    privateKey?: string;
    /** Pinned host key ("<type> <base64>"): the provider refuses any other. */
    hostKey?: string;
    proxy?: Connection;
}

/** One SSH session the replay opened: a CommandRun (../command-diff.ts) of one session, as it went. */
export interface SessionRun extends CommandRun {
    /** A replace is two sessions: the old resource's delete and the new one's create. */
    readonly op: Exclude<CommandOp, "none" | "replace">;
    readonly sessions: 1;
    readonly startedAt: number;
    readonly ms: number;
    readonly ok: boolean;
    readonly stdout: string;
}

/** The provider's failure: the command text and its combined output (the error Pulumi shows). */
export class CommandFailed extends Error {
    constructor(
        readonly resource: string,
        readonly host: string,
        readonly op: string,
        readonly output: string,
        message: string,
    ) {
        super(message);
    }
}

export interface ReplayOptions {
    /**
     * Simulates the tls provider's early renewal: a LocallySignedCert whose inputs did not change is
     * still re-issued, as `pulumi up` does when the cert's readyForRenewal is true (the provider
     * plans a replacement then). The certificates' dependents see new PEMs, as in a real renewal.
     */
    readonly renewCertificates?: boolean;
    /** Upper bound for one SSH session (ms). */
    readonly sessionTimeoutMs?: number;
    /** Progress lines go here (default: stderr). */
    readonly log?: (line: string) => void;
    /** Config keys set with --secret (as `pulumi config set --secret` marks them). */
    readonly secretKeys?: readonly string[];
}

/** One deploy under replay (see deployReplay). */
export interface Deployed {
    readonly mocks: ReplayMocks;
    readonly failures: CommandFailed[];
    readonly outputs: Record<string, unknown>;
    readonly ms: number;
}

/**
 * One `pulumi up` of stack "e2e" under replay: the program evaluated with this config under
 * ReplayMocks chained to `prior` (the previous deploy's, which the next one chains to), every
 * command run to the end (finish()).
 */
export async function deployReplay(
    prior: ReplayMocks | undefined,
    config: Record<string, string>,
    options: ReplayOptions = {},
): Promise<Deployed> {
    const mocks = new ReplayMocks(prior, options);
    const started = Date.now();
    const secretKeys = options.secretKeys ? [...options.secretKeys] : undefined;
    const evaluated = await evaluateProgram(config, { stack: "e2e", mocks, secretKeys });
    const failures = await mocks.finish();
    return { mocks, failures, outputs: evaluated.outputs, ms: Date.now() - started };
}

/** Asserts that a deploy had no failure; otherwise shows the last `tail` characters of each. */
export function assertNoFailures(failures: readonly CommandFailed[], tail = 2000, message?: string): void {
    assert.deepStrictEqual(
        failures.map((f) => f.message.slice(-tail)),
        [],
        message,
    );
}

/** Mocks whose remote commands really run over SSH. Chain them: `new ReplayMocks(previous)`. */
export class ReplayMocks extends ConsulMocks {
    readonly runs: SessionRun[] = [];
    readonly failures: CommandFailed[] = [];
    private inFlight = 0;
    private readonly deferredDeletes: RecordedResource[] = [];
    private readonly keyDir: string;
    private readonly log: (line: string) => void;

    constructor(
        private readonly prior: ReplayMocks | undefined,
        private readonly options: ReplayOptions = {},
    ) {
        super(prior);
        this.keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "replay-keys-"));
        this.log = options.log ?? ((line) => process.stderr.write(line + "\n"));
    }

    /** SSH sessions per host in this deploy. */
    sessionsPerHost(): Map<string, number> {
        return sessionsPerHost(this.runs);
    }

    protected keepsState(before: RecordedResource, inputs: Record<string, unknown>): boolean {
        if (this.options.renewCertificates && before.type === "tls:index/locallySignedCert:LocallySignedCert") {
            return false;
        }
        return super.keepsState(before, inputs);
    }

    protected async stateFor(
        type: string,
        name: string,
        inputs: Record<string, unknown>,
        before?: RecordedResource,
        options: { deleteBeforeReplace: boolean } = { deleteBeforeReplace: false },
    ): Promise<Record<string, unknown>> {
        if (type !== COMMAND_TYPE) return super.stateFor(type, name, inputs, before, options);
        const op = diffOp(before?.inputs, inputs);
        let outputs: Record<string, unknown>;
        switch (op) {
            case "none":
                return (before as RecordedResource).state;
            default:
                outputs = await this.run(name, "create", inputs, inputs.create);
                break;
            case "replace": {
                const old = before as RecordedResource;
                if (options.deleteBeforeReplace) {
                    // The engine deletes the old resource first, then creates the new one.
                    await this.run(name, "delete", old.inputs, old.inputs.delete, old.state);
                    outputs = await this.run(name, "create", inputs, inputs.create);
                } else {
                    outputs = await this.run(name, "create", inputs, inputs.create);
                    this.deferredDeletes.push(old);
                }
                break;
            }
            case "update":
                outputs = await this.run(
                    name,
                    "update",
                    inputs,
                    inputs.update ?? inputs.create,
                    (before as RecordedResource).state,
                );
                break;
        }
        return { ...inputs, ...outputs };
    }

    /**
     * Waits until the program has registered everything it will (no command running, no new
     * registration for `quietMs`), then ends the deploy as the engine does: on success, deletes
     * replaced resources and those no longer registered; on failure, keeps the state of what was
     * not reached. Returns the failures (empty on success).
     */
    async finish(quietMs = 300, maxMs = 20 * 60_000): Promise<CommandFailed[]> {
        const deadline = Date.now() + maxMs;
        let last = -1;
        let quietSince = Date.now();
        while (Date.now() - quietSince < quietMs || this.inFlight > 0) {
            if (Date.now() > deadline) throw new Error(`replay: the deploy did not finish within ${maxMs} ms`);
            await new Promise((r) => setTimeout(r, 25));
            const now = this.resources.length + this.runs.length;
            if (now !== last || this.inFlight > 0) {
                last = now;
                quietSince = Date.now();
            }
        }
        const registered = new Set(this.resources.map((r) => `${r.type}::${r.name}`));
        const gone = (this.prior?.resources ?? []).filter((r) => !registered.has(`${r.type}::${r.name}`));
        if (this.failures.length > 0) {
            // The engine stops at the first failure: nothing is deleted, unreached resources keep their state.
            for (const r of gone) this.resources.push(r);
        } else {
            for (const r of [...gone].reverse()) {
                if (r.type !== COMMAND_TYPE || r.retainOnDelete) continue;
                try {
                    await this.run(r.name, "delete", r.inputs, r.inputs.delete, r.state);
                } catch {
                    // Recorded in `failures`; the resource stays in the state.
                    this.resources.push(r);
                }
            }
            for (const r of this.deferredDeletes.reverse()) {
                await this.run(r.name, "delete", r.inputs, r.inputs.delete, r.state).catch(() => undefined);
            }
        }
        fs.rmSync(this.keyDir, { recursive: true, force: true });
        return this.failures;
    }

    private async run(
        name: string,
        op: SessionRun["op"],
        inputs: Record<string, unknown>,
        script: unknown,
        previous?: Record<string, unknown>,
    ): Promise<Record<string, unknown>> {
        if (typeof script !== "string" || script === "") return { stdout: "", stderr: "" };
        const connection = inputs.connection as Connection;
        const env: Record<string, string> = { ...((inputs.environment as Record<string, string>) ?? {}) };
        // The provider passes the previous outputs to update and delete unless told not to.
        if (previous && inputs.addPreviousOutputInEnv !== false) {
            if (typeof previous.stdout === "string") env.PULUMI_COMMAND_STDOUT = previous.stdout;
            if (typeof previous.stderr === "string") env.PULUMI_COMMAND_STDERR = previous.stderr;
        }
        this.inFlight++;
        const startedAt = Date.now();
        this.log(`[replay] ${op} ${name} on ${connection.host}`);
        try {
            const result = await this.ssh(
                connection,
                script,
                typeof inputs.stdin === "string" ? inputs.stdin : "",
                env,
            );
            const ms = Date.now() - startedAt;
            this.runs.push({
                name,
                host: connection.host,
                op,
                sessions: 1,
                startedAt,
                ms,
                ok: result.code === 0,
                stdout: result.stdout,
            });
            for (const line of result.stdout.split("\n").filter((l) => l !== "")) this.log(`[replay]   ${line}`);
            if (result.code !== 0) {
                // pulumi-command: "Process exited with status N: running <command>:\n<stdout+stderr>".
                const failure = new CommandFailed(
                    name,
                    connection.host,
                    op,
                    result.combined,
                    `${name}: Process exited with status ${result.code}: running ${JSON.stringify(script)}:\n${result.combined}`,
                );
                this.failures.push(failure);
                this.log(`[replay]   FAILED (${ms} ms): ${result.stderr.trim().split("\n").slice(-3).join(" | ")}`);
                throw failure;
            }
            this.log(`[replay]   done in ${ms} ms`);
            return { stdout: result.stdout.replace(/\n$/, ""), stderr: result.stderr.replace(/\n$/, "") };
        } finally {
            this.inFlight--;
        }
    }

    private keyFile(privateKey: string): string {
        const file = path.join(this.keyDir, `key-${Buffer.from(privateKey).toString("base64url").slice(-24)}`);
        if (!fs.existsSync(file)) {
            fs.writeFileSync(file, privateKey.endsWith("\n") ? privateKey : privateKey + "\n", { mode: 0o600 });
        }
        return file;
    }

    private knownHosts(hostKey: string): string {
        const file = path.join(this.keyDir, `known-${Buffer.from(hostKey).toString("hex").slice(-24)}`);
        if (!fs.existsSync(file)) fs.writeFileSync(file, `pinned-host ${hostKey}\n`, { mode: 0o600 });
        return file;
    }

    private sshArgs(connection: Connection): string[] {
        // A pinned key is checked as the provider does (any other key is refused); without one, as
        // the provider does too, any key is accepted.
        const hostKeyArgs = connection.hostKey
            ? ["-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${this.knownHosts(connection.hostKey)}`]
            : ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"];
        const args = [
            ...["-o", "BatchMode=yes", "-o", "HostKeyAlias=pinned-host", ...hostKeyArgs],
            ...["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=15", "-o", "ControlMaster=no", "-o", "ControlPath=none"],
            ...["-o", "IdentitiesOnly=yes", "-p", String(connection.port ?? 22)],
        ];
        if (connection.privateKey) args.push("-i", this.keyFile(connection.privateKey));
        return args;
    }

    private ssh(
        connection: Connection,
        script: string,
        stdin: string,
        env: Record<string, string>,
    ): Promise<{ code: number; stdout: string; stderr: string; combined: string }> {
        const args = this.sshArgs(connection);
        if (connection.proxy) {
            const hop = [
                "ssh",
                ...this.sshArgs(connection.proxy),
                "-W",
                "%h:%p",
                `${connection.proxy.user ?? "root"}@${connection.proxy.host}`,
            ];
            args.push("-o", `ProxyCommand=${hop.join(" ")}`);
        }
        // SetEnv goes through sshd's AcceptEnv, like the provider's session.Setenv.
        for (const [k, v] of Object.entries(env)) args.push("-o", `SetEnv=${k}=${JSON.stringify(v)}`);
        args.push(`${connection.user ?? "root"}@${connection.host}`, "--", script);
        const timeoutMs = this.options.sessionTimeoutMs ?? 10 * 60_000;
        return new Promise((resolve, reject) => {
            const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            let combined = "";
            const timer = setTimeout(() => {
                combined += `\n[replay] killed after ${timeoutMs} ms\n`;
                child.kill("SIGKILL");
            }, timeoutMs);
            child.stdout.on("data", (d: Buffer) => {
                stdout += d.toString();
                combined += d.toString();
            });
            child.stderr.on("data", (d: Buffer) => {
                stderr += d.toString();
                combined += d.toString();
            });
            child.on("error", (err) => {
                clearTimeout(timer);
                reject(err);
            });
            child.on("close", (code) => {
                clearTimeout(timer);
                resolve({ code: code ?? 255, stdout, stderr, combined });
            });
            child.stdin.on("error", () => undefined);
            child.stdin.end(stdin);
        });
    }
}
