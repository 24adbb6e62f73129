// The real Pulumi CLI, built by scripts/engine/build.sh, driving a copy of this project in a
// temporary directory: local file backend, passphrase secrets, a PULUMI_HOME holding the provider
// plugins built into the engine cache. Nothing outside the temporary directory is written.

import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ENGINE_BUILD, engineCacheDir, enginePlugins, VM_ENGINE_COMPONENTS } from "../../scripts/engine/engine-cache";
import { REPO_ROOT } from "../mocks";

/**
 * What `pulumi` needs of the project (tsconfig.pulumi.json: Pulumi.yaml's runtime.options.tsconfig,
 * what the language host compiles the program with).
 */
export const PROJECT_FILES = [
    "Pulumi.yaml",
    "package.json",
    "tsconfig.json",
    "tsconfig.pulumi.json",
    "index.ts",
    "components",
];

export interface RunResult {
    readonly code: number;
    readonly output: string;
    readonly ms: number;
}

/** One completed step of an update, from the engine's event log. */
export interface Step {
    readonly op: string;
    readonly urn: string;
    readonly type: string;
    /** Event sequence numbers of the step's start and end (the engine's own order). */
    readonly startSeq: number;
    readonly endSeq: number;
}

export interface Update extends RunResult {
    readonly steps: Step[];
    /** The summary's counts per op ("same", "create", ...). */
    readonly changes: Record<string, number>;
    /** The engine's event log as written (everything the engine and providers logged). */
    readonly eventLog: string;
    /** What providers and the program logged, once per message (the text output repeats them). */
    readonly diagnostics: { readonly urn: string; readonly severity: string; readonly message: string }[];
}

export function nameOf(urn: string): string {
    return urn.slice(urn.lastIndexOf("::") + 2);
}

interface EngineEvent {
    sequence: number;
    resourcePreEvent?: { metadata: { op: string; urn: string; type: string } };
    resOutputsEvent?: { metadata: { op: string; urn: string; type: string } };
    summaryEvent?: { resourceChanges: Record<string, number> };
    diagnosticEvent?: { urn?: string; severity: string; message: string };
}

/**
 * The engine components a VM stack needs that the cache lacks (build.sh's outputs, by its rule: a
 * component whose output exists is cached). Empty when `PulumiProject.create` will not build.
 * (build.sh still rebuilds the project's own Go components when their sources changed.) `env`: the
 * environment build.sh will see (the cache is under its HOME or XDG_CACHE_HOME).
 */
export function engineMissing(env: NodeJS.ProcessEnv = process.env): string[] {
    const cache = engineCacheDir(env);
    const deps = (
        JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
            dependencies: Record<string, string>;
        }
    ).dependencies;
    const binaries: Record<string, string> = {
        cli: "pulumi",
        langhost: "pulumi-language-nodejs",
        stub: "pulumi-resource-stub",
    };
    const output = (c: string): string =>
        c in binaries
            ? path.join(cache, "bin", binaries[c])
            : path.join(
                  cache,
                  "pulumi-home",
                  "plugins",
                  `resource-${c}-v${deps[`@pulumi/${c}`]}`,
                  `pulumi-resource-${c}`,
              );
    return VM_ENGINE_COMPONENTS.filter((c) => !fs.existsSync(output(c))).map((c) => `${c} (${output(c)})`);
}

export class PulumiProject {
    private constructor(
        readonly dir: string,
        private readonly root: string,
        private readonly env: NodeJS.ProcessEnv,
        readonly stack: string,
        /** False for a project made by `inSameBackend`: the temporary directory is the first one's. */
        private readonly ownsRoot = true,
    ) {}

    /**
     * Builds (or reuses) the engine, copies the project, installs the plugins, logs in to a file
     * backend and creates `stack` with `config` (keys without the `consul:` prefix). `components`:
     * what build.sh builds (a plugin it does not build is the preview-only stub, enginePlugins).
     */
    static async create(
        stack: string,
        config: Record<string, string>,
        components: readonly string[] = VM_ENGINE_COMPONENTS,
    ): Promise<PulumiProject> {
        const build = await runProcess("bash", [ENGINE_BUILD, ...components], {
            env: process.env,
            timeoutMs: 90 * 60_000,
        });
        if (build.code !== 0) throw new Error(`scripts/engine/build.sh failed:\n${build.output.slice(-3000)}`);
        const cache = engineCacheDir();
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "consul-engine-"));
        const dir = path.join(root, "project");
        fs.mkdirSync(dir);
        for (const entry of PROJECT_FILES) {
            fs.cpSync(path.join(REPO_ROOT, entry), path.join(dir, entry), { recursive: true });
        }
        fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"));
        const env: NodeJS.ProcessEnv = {
            ...process.env,
            PATH: `${path.join(cache, "bin")}:${process.env.PATH ?? ""}`,
            HOME: path.join(root, "home"),
            PULUMI_HOME: path.join(root, "pulumi-home"),
            PULUMI_SKIP_UPDATE_CHECK: "1",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            PULUMI_CONFIG_PASSPHRASE: "engine-e2e-passphrase",
            PULUMI_SKIP_CONFIRMATIONS: "true",
            // Enables --event-log, the engine's own record of each step.
            PULUMI_DEBUG_COMMANDS: "true",
        };
        fs.mkdirSync(env.HOME as string);
        fs.mkdirSync(path.join(root, "state"));
        const project = new PulumiProject(dir, root, env, stack);
        for (const plugin of enginePlugins(cache)) {
            await project.must(["plugin", "install", "resource", plugin.name, plugin.version, "--file", plugin.file]);
        }
        await project.must(["login", "--non-interactive", `file://${path.join(root, "state")}`]);
        await project.must(["stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive"]);
        project.setConfig(config);
        return project;
    }

    /**
     * Writes the stack's config (keys without the `consul:` prefix) into Pulumi.<stack>.yaml, as an
     * operator would: lists as YAML lists (the schema types them `array<string>`), the rest as strings.
     */
    setConfig(config: Record<string, string>, project = "consul"): void {
        const file = path.join(this.dir, `Pulumi.${this.stack}.yaml`);
        const kept = fs
            .readFileSync(file, "utf8")
            .split("\n")
            .filter((l) => /^(encryptionsalt|secretsprovider|encryptedkey):/.test(l));
        const lines = Object.entries(config).map(([k, v]) => {
            const value: unknown = v.startsWith("[") ? JSON.parse(v) : v;
            return `  ${project}:${k}: ${JSON.stringify(value)}`;
        });
        fs.writeFileSync(file, [...kept, "config:", ...lines, ""].join("\n"));
    }

    run(args: string[], timeoutMs = 30 * 60_000): Promise<RunResult> {
        return runProcess("pulumi", [...args, "--non-interactive", "--color", "never"], {
            cwd: this.dir,
            env: this.env,
            timeoutMs,
        });
    }

    async must(args: string[]): Promise<string> {
        const r = await this.run(args);
        if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.code}:\n${r.output.slice(-4000)}`);
        return r.output;
    }

    /**
     * `pulumi up` (or destroy) with the engine's event log, parsed into steps. --skip-preview keeps
     * the log to the update's own steps; the preview path is what scripts/engine/preview.sh runs.
     */
    async update(command: "up" | "destroy", extra: string[] = []): Promise<Update> {
        const eventLog = path.join(this.root, `events-${Date.now()}.jsonl`);
        const r = await this.run([
            command,
            "--stack",
            this.stack,
            "--yes",
            "--skip-preview",
            "--event-log",
            eventLog,
            ...extra,
        ]);
        const eventText = fs.existsSync(eventLog) ? fs.readFileSync(eventLog, "utf8") : "";
        const events = eventText
            ? eventText
                  .split("\n")
                  .filter((l) => l.trim() !== "")
                  .map((l) => JSON.parse(l) as EngineEvent)
            : [];
        const starts = new Map<string, number>();
        const steps: Step[] = [];
        let changes: Record<string, number> = {};
        const diagnostics: { urn: string; severity: string; message: string }[] = [];
        for (const e of events) {
            if (e.resourcePreEvent)
                starts.set(`${e.resourcePreEvent.metadata.op} ${e.resourcePreEvent.metadata.urn}`, e.sequence);
            const done = e.resOutputsEvent?.metadata;
            if (done) {
                steps.push({
                    op: done.op,
                    urn: done.urn,
                    type: done.type,
                    startSeq: starts.get(`${done.op} ${done.urn}`) ?? e.sequence,
                    endSeq: e.sequence,
                });
            }
            if (e.summaryEvent) changes = e.summaryEvent.resourceChanges;
            if (e.diagnosticEvent) {
                const { urn, severity, message } = e.diagnosticEvent;
                diagnostics.push({ urn: urn ?? "", severity, message });
            }
        }
        return { ...r, steps, changes, diagnostics, eventLog: eventText };
    }

    async outputs(): Promise<Record<string, unknown>> {
        const out = await this.must(["stack", "output", "--stack", this.stack, "--json", "--show-secrets"]);
        return JSON.parse(out) as Record<string, unknown>;
    }

    /** The state as stored (secrets encrypted) and decrypted. */
    async exportState(showSecrets: boolean): Promise<string> {
        return this.must(["stack", "export", "--stack", this.stack, ...(showSecrets ? ["--show-secrets"] : [])]);
    }

    /** The binary of resource plugin `name` `version` as installed in this project's PULUMI_HOME. */
    installedPlugin(name: string, version: string): string {
        return path.join(
            this.env.PULUMI_HOME as string,
            "plugins",
            `resource-${name}-v${version}`,
            `pulumi-resource-${name}`,
        );
    }

    /** The project in `dir` (under this one's temporary directory), in this one's backend and PULUMI_HOME. */
    inSameBackend(dir: string, stack: string): PulumiProject {
        return new PulumiProject(dir, this.root, this.env, stack, false);
    }

    /** ENGINE_E2E_KEEP=1 keeps the directory (project, state, event logs) for a look afterwards. */
    dispose(): void {
        if (!this.ownsRoot) return;
        if (process.env.ENGINE_E2E_KEEP === "1") {
            process.stderr.write(`kept ${this.root}\n`);
            return;
        }
        fs.rmSync(this.root, { recursive: true, force: true });
    }
}

function runProcess(
    command: string,
    args: string[],
    opts: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<RunResult> {
    const started = Date.now();
    return new Promise((resolve) => {
        const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code: code ?? 255, output, ms: Date.now() - started });
        });
    });
}
