// Figures for the VM topology, in one run, side by side (issue 17, "Scale"):
//   - resources per host, and Outputs per host (every Output the SDK constructs, counted in this
//     process at 3 servers + 10 and + 100 clients; the per-host figure is the slope between them),
//     with the program lines that create them;
//   - SSH sessions (remote commands) per host for a first deploy, a no-change re-run and a
//     one-client change, by the command provider's diff rules applied to the recorded inputs;
//   - program evaluation time and peak memory (RSS) for 3 servers + 10/100/1000 clients, under
//     ts-node and compiled by tsc, each evaluation in a fresh process;
//   - a real-engine `pulumi preview` of 3 servers + 100 clients (scripts/engine/bench-preview.ts).
// Run: npm run bench   (or: npx ts-node --transpile-only scripts/bench-vm.ts)
// Environment: BENCH_SKIP_ENGINE=1 runs without the real engine (the report says it was skipped).
// Exit status 1 when a figure could not be measured or a target is missed (after the whole report).
//
// Evaluation time is measured in child processes, one per client count, each warmed up with a
// 1-client evaluation first (module loading and the first key generation are not the program's
// cost): under ts-node with source-map-support (as the tests and `pulumi up` of a TypeScript
// program run), and the same code compiled by tsc into bin/ under plain node. The Pulumi SDK
// captures a stack trace for every internal promise; source-map-support makes each capture ~10x
// dearer, hence the gap between the two. Peak RSS is the child's `maxRSS` (warm-up included; the
// warmed-up RSS is printed next to it).

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { COMMAND_TYPE, CommandRun, diffCommands, sessionsPerHost } from "../tests/command-diff";
import {
    ConsulMocks,
    evaluateProgram,
    RecordedResource,
    REPO_ROOT,
    stackFileConfig,
    withOperatorHome,
} from "../tests/mocks";
import { engineMissing } from "../tests/engine/pulumi-cli";
import { prodStackWithHosts } from "../tests/vm/fixtures";

const SERVERS = 3;
const CLIENT_COUNTS = [10, 100, 1000] as const;
const TARGETS = { ratio1000to100: 11, compiled1000Ms: 5000, enginePreview100Ms: 60_000 };
const EVAL_LINE = "BENCH-EVAL ";

/** The prod stack's settings with `servers` + `clients` hosts (documentation addresses, pinned example keys). */
export const vmConfig = prodStackWithHosts;

function summarize(runs: readonly CommandRun[], hostCount: number): string {
    const perHost = sessionsPerHost(runs);
    const counts = [...perHost.values()];
    const touched = counts.filter((n) => n > 0).length;
    const max = counts.length > 0 ? Math.max(...counts) : 0;
    const total = counts.reduce((a, b) => a + b, 0);
    return `${total} sessions, ${touched}/${hostCount} hosts touched, max ${max} per changed host`;
}

// ---------------------------------------------------------------------------------------------
// Evaluation time and memory, one child process per figure.

interface EvalFigure {
    readonly n: number;
    readonly ms: number;
    readonly resources: number;
    readonly commands: number;
    /** RSS after the warm-up, before the measured evaluation (MB). */
    readonly warmRssMb: number;
    /** The process's peak RSS, warm-up included (MB). */
    readonly peakRssMb: number;
}

/** Child mode (--evaluate N): one warm-up, one measured evaluation, one JSON line on stdout. */
async function evaluateInChild(n: number, secretKeys: string[]): Promise<void> {
    await evaluateProgram(vmConfig(SERVERS, 1), { stack: "prod", secretKeys });
    const warmRssMb = process.memoryUsage().rss / 2 ** 20;
    const start = process.hrtime.bigint();
    const result = await evaluateProgram(vmConfig(SERVERS, n), { stack: "prod", secretKeys });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const figure: EvalFigure = {
        n,
        ms,
        resources: result.mocks.resources.length,
        commands: result.mocks.resources.filter((r: RecordedResource) => r.type === COMMAND_TYPE).length,
        warmRssMb,
        peakRssMb: process.resourceUsage().maxRSS / 1024,
    };
    console.log(EVAL_LINE + JSON.stringify(figure));
}

type Mode = "ts-node" | "compiled";

function evaluateInFreshProcess(mode: Mode, n: number): EvalFigure {
    const args =
        mode === "ts-node"
            ? [require.resolve("ts-node/dist/bin"), "--transpile-only", path.join(REPO_ROOT, "scripts", "bench-vm.ts")]
            : [path.join(REPO_ROOT, "bin", "scripts", "bench-vm.js")];
    const child = spawnSync(process.execPath, [...args, "--evaluate", String(n)], {
        cwd: REPO_ROOT,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
    });
    const line = child.stdout.split("\n").find((l) => l.startsWith(EVAL_LINE));
    // A figure missing is a failed benchmark, not a shorter report.
    if (child.status !== 0 || !line) {
        throw new Error(`the ${mode} evaluation of ${n} clients exited ${child.status}:\n${child.stdout}`);
    }
    return JSON.parse(line.slice(EVAL_LINE.length)) as EvalFigure;
}

/** Compiles the project into bin/ (tsc, tsconfig.json) for the plain-node figures. */
function compile(): void {
    const bin = path.join(REPO_ROOT, "bin");
    const tsc = spawnSync(process.execPath, [require.resolve("typescript/bin/tsc"), "--outDir", bin], {
        cwd: REPO_ROOT,
        encoding: "utf8",
    });
    if (tsc.status !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
    for (const f of fs.readdirSync(REPO_ROOT).filter((name) => /^Pulumi(\..+)?\.yaml$/.test(name))) {
        fs.copyFileSync(path.join(REPO_ROOT, f), path.join(bin, f));
    }
    // The VM host scripts are .sh files the modules read next to themselves; tsc copies only code.
    const components = path.join(REPO_ROOT, "components");
    for (const f of fs
        .readdirSync(components, { recursive: true, encoding: "utf8" })
        .filter((name) => name.endsWith(".sh"))) {
        fs.mkdirSync(path.dirname(path.join(bin, "components", f)), { recursive: true });
        fs.copyFileSync(path.join(components, f), path.join(bin, "components", f));
    }
}

// ---------------------------------------------------------------------------------------------
// Outputs per host: every OutputImpl the SDK constructs, and the program line it came from.

interface SiteCount {
    /** The program frame nearest the construction (file:line function), or why there is none. */
    readonly site: string;
    /** The SDK function the program called (the frame just inside the SDK), e.g. OutputImpl.apply. */
    readonly via: string;
    count: number;
}

/**
 * Counts Output constructions: the SDK's OutputImpl constructor starts with
 * `this.__pulumiOutput = true`, so a setter of that name on the prototype sees every new Output
 * (whoever creates it: `apply`, `all`, `output`, `secret`, `interpolate`, resource output
 * properties, ...) and turns itself into an own data property at once.
 */
class OutputCensus {
    total = 0;
    readonly sites = new Map<string, SiteCount>();
    private readonly positions = new Map<string, { file: string; line: number; column: number }>();

    install(): void {
        const proto = (pulumi.Output as unknown as { prototype: object }).prototype;
        // eslint-disable-next-line @typescript-eslint/no-this-alias
        const census = this;
        Object.defineProperty(proto, "__pulumiOutput", {
            configurable: true,
            get: () => undefined,
            set(this: object, value: unknown) {
                Object.defineProperty(this, "__pulumiOutput", {
                    value,
                    writable: true,
                    enumerable: true,
                    configurable: true,
                });
                census.record();
            },
        });
    }

    uninstall(): void {
        delete (pulumi.Output as unknown as { prototype: Record<string, unknown> }).prototype.__pulumiOutput;
    }

    reset(): Map<string, SiteCount> {
        const before = new Map([...this.sites].map(([k, v]) => [k, { ...v }]));
        this.total = 0;
        this.sites.clear();
        return before;
    }

    /** Off: count only (no stack capture, which is dear). */
    attribute = true;

    private record(): void {
        this.total++;
        if (!this.attribute) return;
        // eslint-disable-next-line @typescript-eslint/unbound-method -- restored as it was, never called here
        const previous = { prepare: Error.prepareStackTrace, limit: Error.stackTraceLimit };
        Error.prepareStackTrace = (_e, frames) => frames;
        Error.stackTraceLimit = 80;
        const holder: { stack?: NodeJS.CallSite[] } = {};
        Error.captureStackTrace(holder);
        const frames = holder.stack ?? [];
        Error.prepareStackTrace = previous.prepare;
        Error.stackTraceLimit = previous.limit;
        // frames[0] is record(), frames[1] the setter, frames[2] the constructor.
        const k = frames.findIndex((f, i) => i > 2 && isProgramFrame(f));
        let site = "(no program frame: the SDK's own asynchronous work)";
        let via = "";
        if (k >= 0) {
            const f = frames[k];
            const file = f.getFileName() ?? "";
            const key = `${file}:${f.getLineNumber()}:${f.getColumnNumber()}`;
            site = `${key} ${frameName(f)}`;
            if (!this.positions.has(site)) {
                this.positions.set(site, {
                    file,
                    line: f.getLineNumber() ?? 0,
                    column: (f.getColumnNumber() ?? 1) - 1,
                });
            }
            via = frameName(frames[k - 1]);
        }
        const id = `${site}\u0000${via}`;
        const entry = this.sites.get(id);
        if (entry) entry.count++;
        else this.sites.set(id, { site, via, count: 1 });
    }

    /** file:line in the TypeScript source (ts-node's source maps), relative to the repository. */
    describe(site: string): string {
        const pos = this.positions.get(site);
        if (!pos) return site;
        let { file, line } = pos;
        try {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const sms = require("@cspotcode/source-map-support") as {
                mapSourcePosition(p: { source: string; line: number; column: number }): {
                    source: string;
                    line: number;
                };
            };
            const mapped = sms.mapSourcePosition({ source: file, line, column: pos.column });
            ({ source: file, line } = mapped);
        } catch {
            // unmapped: the compiled line
        }
        const name = site.slice(site.indexOf(" ") + 1);
        return `${path.relative(REPO_ROOT, file.replace(/^file:\/\//, ""))}:${line} ${name}`;
    }
}

function isProgramFrame(f: NodeJS.CallSite): boolean {
    const file = f.getFileName() ?? "";
    const rel = path.relative(REPO_ROOT, file.replace(/^file:\/\//, ""));
    return /^(bin\/)?(components\/|index\.)/.test(rel);
}

function frameName(f: NodeJS.CallSite | undefined): string {
    if (!f) return "?";
    const fn = f.getFunctionName() ?? f.getMethodName() ?? "<anonymous>";
    if (f.isConstructor()) return `new ${fn}`;
    // Outputs are Proxies: a method called on one reports the type Proxy.
    const type = f.getTypeName() === "Proxy" ? "Output" : f.getTypeName();
    return type && type !== "Object" && !fn.startsWith(`${type}.`) ? `${type}.${fn}` : fn;
}

interface OutputFigures {
    readonly at: Record<number, number>;
    /** Per client host, between 10 and 100 clients (the sites' figures too) and 100 and 1000. */
    readonly perHost: number;
    readonly perHost1000: number;
    readonly topSites: { where: string; via: string; perHost: number }[];
}

async function countOutputs(secretKeys: string[]): Promise<OutputFigures> {
    const census = new OutputCensus();
    census.install();
    try {
        const at: Record<number, number> = {};
        const bySite: Record<number, Map<string, SiteCount>> = {};
        for (const n of CLIENT_COUNTS) {
            census.reset();
            census.attribute = n !== 1000;
            await evaluateProgram(vmConfig(SERVERS, n), { stack: "prod", secretKeys });
            at[n] = census.total;
            bySite[n] = census.reset();
        }
        const hosts = 100 - 10;
        const topSites = [...bySite[100].entries()]
            .map(([id, s]) => ({
                where: census.describe(s.site),
                via: s.via,
                perHost: (s.count - (bySite[10].get(id)?.count ?? 0)) / hosts,
            }))
            .filter((s) => s.perHost > 0)
            .sort((a, b) => b.perHost - a.perHost);
        return { at, perHost: (at[100] - at[10]) / hosts, perHost1000: (at[1000] - at[100]) / 900, topSites };
    } finally {
        census.uninstall();
    }
}

// ---------------------------------------------------------------------------------------------
// The real engine's preview (scripts/engine/bench-preview.ts), if the engine is built.

type EngineFigure = { kind: "measured"; ms: number; line: string } | { kind: "not measured"; why: string };

/** `env`: the environment as the benchmark found it (the engine cache is under the real HOME). */
function enginePreview(clients: number, env: NodeJS.ProcessEnv): EngineFigure {
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

// ---------------------------------------------------------------------------------------------

function machineLoad(): string {
    const [one, five] = os.loadavg();
    return `Machine load average ${one.toFixed(1)} (1 min), ${five.toFixed(1)} (5 min) on ${os.cpus().length} cores`;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (x: number) => `${Math.round(x)} MB`;
const row = (label: string, cells: string[], after = "") =>
    `  ${label.padEnd(34)}${cells.map((c) => c.padStart(12)).join("")}${after ? "   " + after : ""}`;

async function main(): Promise<void> {
    const callerEnv = { ...process.env };
    // The stack files' SSH key path (~/.ssh/consul_ed25519) exists in a throw-away HOME, which the
    // evaluation children inherit; the engine preview gets the caller's environment.
    const operator = withOperatorHome();
    const { secretKeys } = stackFileConfig("prod");
    try {
        const evaluateArg = process.argv.indexOf("--evaluate");
        if (evaluateArg >= 0) {
            await evaluateInChild(Number(process.argv[evaluateArg + 1]), secretKeys);
            return;
        }
        const misses: string[] = [];
        // Warm-up: module loading and the first key generation are not the program's cost.
        await evaluateProgram(vmConfig(SERVERS, 1), { stack: "prod", secretKeys });

        console.log("VM topology benchmark (mocked engine; sessions = remote commands = SSH round trips)");
        console.log(`${machineLoad()} at the start\n`);

        const clients = 10;
        const config = vmConfig(SERVERS, clients);
        const first = await evaluateProgram(config, { stack: "prod", secretKeys });
        const resources = first.mocks.resources;
        const perHost = resources.filter((r) => /^consul-vm-(server|client)-/.test(r.name));
        console.log(`Resources (3 servers + ${clients} clients): ${resources.length} in all`);
        console.log(
            `  per host: ${perHost.length / (SERVERS + clients)} (${[...new Set(perHost.map((r) => r.type))].join(" + ")})`,
        );
        console.log(
            `  shared: ${resources.length - perHost.length} (PKI, gossip key, ACL tokens, ACL step, components)`,
        );

        const hosts = SERVERS + clients;
        const deploy = diffCommands([], first.mocks.resources);
        const again = await evaluateProgram(config, { stack: "prod", secretKeys, mocks: new ConsulMocks(first.mocks) });
        const rerun = diffCommands(first.mocks.resources, again.mocks.resources);
        const changedConfig = {
            ...config,
            clientHosts: config.clientHosts.replace("app-4=10.20.1.24", "app-4=10.20.1.99"),
        };
        const changed = await evaluateProgram(changedConfig, {
            stack: "prod",
            secretKeys,
            mocks: new ConsulMocks(again.mocks),
        });
        const oneClient = diffCommands(again.mocks.resources, changed.mocks.resources);
        console.log("\nSSH sessions per host (target: <= 2 per changed host, 0 per unchanged host)");
        console.log(`  first deploy:      ${summarize(deploy, hosts)} (server 1 also runs the ACL step)`);
        console.log(`  no-change re-run:  ${summarize(rerun, hosts)}`);
        console.log(`  one-client change: ${summarize(oneClient, hosts)}`);
        for (const run of oneClient.filter((r) => r.op !== "none")) {
            console.log(`    ${run.op} ${run.name} on ${run.host}`);
        }

        console.log("\nOutputs (every Output the SDK constructs, whoever asks for it), 3 servers + N clients");
        const outputs = await countOutputs(secretKeys);
        console.log(
            `  N=10: ${outputs.at[10]}, N=100: ${outputs.at[100]}, N=1000: ${outputs.at[1000]}; per client host: ` +
                `${outputs.perHost.toFixed(1)} (slope 10→100), ${outputs.perHost1000.toFixed(1)} (100→1000)`,
        );
        console.log("  per client host, by the program line that creates them (and the SDK call it makes):");
        for (const s of outputs.topSites.slice(0, 12)) {
            console.log(`    ${s.perHost.toFixed(1).padStart(5)}  ${s.where}${s.via ? `  via ${s.via}` : ""}`);
        }

        console.log("\nEvaluation, 3 servers + N clients, each in a fresh process after a 1-client warm-up");
        console.log(`  (targets: 1000:100 time ratio <= ${TARGETS.ratio1000to100}, compiled N=1000 < 5 s)`);
        compile();
        const figures: Record<Mode, EvalFigure[]> = { "ts-node": [], compiled: [] };
        for (const mode of ["ts-node", "compiled"] as const) {
            for (const n of CLIENT_COUNTS) figures[mode].push(evaluateInFreshProcess(mode, n));
        }
        const byN = figures.compiled;
        console.log(
            row(
                "",
                CLIENT_COUNTS.map((n) => `N=${n}`),
            ),
        );
        console.log(
            row(
                "resources",
                byN.map((f) => String(f.resources)),
                `per client host: ${((byN[2].resources - byN[1].resources) / 900).toFixed(1)}`,
            ),
        );
        console.log(
            row(
                "commands",
                byN.map((f) => String(f.commands)),
            ),
        );
        console.log(
            row(
                "Outputs",
                CLIENT_COUNTS.map((n) => String(outputs.at[n])),
                `per client host: ${outputs.perHost.toFixed(1)} (10→100), ${outputs.perHost1000.toFixed(1)} (100→1000)`,
            ),
        );
        for (const mode of ["ts-node", "compiled"] as const) {
            const f = figures[mode];
            const ratio = f[2].ms / f[1].ms;
            const label = mode === "ts-node" ? "ts-node (source maps)" : "compiled (tsc, plain node)";
            console.log(
                row(
                    `${label} time`,
                    f.map((x) => seconds(x.ms)),
                    `1000:100 = ${ratio.toFixed(1)}x (10x is linear)`,
                ),
            );
            console.log(
                row(
                    `${label} peak RSS`,
                    f.map((x) => mb(x.peakRssMb)),
                ),
            );
            console.log(
                row(
                    `  warmed-up RSS before`,
                    f.map((x) => mb(x.warmRssMb)),
                ),
            );
            if (ratio > TARGETS.ratio1000to100) misses.push(`${mode} 1000:100 ratio ${ratio.toFixed(1)}x > 11`);
        }
        const compiled1000 = figures.compiled[2].ms;
        if (compiled1000 >= TARGETS.compiled1000Ms) misses.push(`compiled N=1000 ${seconds(compiled1000)} >= 5 s`);

        console.log("\nReal engine: pulumi preview of 3 servers + 100 clients (target < 60 s)");
        const engine = enginePreview(100, callerEnv);
        if (engine.kind === "measured") {
            console.log(`  ${engine.line}`);
            if (engine.ms >= TARGETS.enginePreview100Ms) misses.push(`engine preview ${seconds(engine.ms)} >= 60 s`);
        } else {
            console.log(`  NOT MEASURED: ${engine.why}`);
            if (process.env.BENCH_SKIP_ENGINE !== "1") misses.push("engine preview not measured");
        }

        console.log(`\n${machineLoad()} at the end (times are wall-clock: a busy machine inflates them)`);
        console.log(misses.length === 0 ? "All targets met." : `TARGETS MISSED OR NOT MEASURED: ${misses.join("; ")}`);
        if (misses.length > 0) process.exitCode = 1;
    } finally {
        operator.restore();
    }
}

if (require.main === module) {
    main().catch((err: unknown) => {
        console.error(err);
        process.exit(1);
    });
}
