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
import { COMMAND_TYPE, CommandRun, diffCommands, sessionsPerHost } from "../tests/command-diff";
import {
    ConsulMocks,
    evaluateProgram,
    RecordedResource,
    REPO_ROOT,
    stackFileConfig,
    withOperatorHome,
} from "../tests/mocks";
import { enginePreview } from "./bench/engine-preview";
import { countOutputs } from "./bench/outputs";
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
        console.log(
            "\nSSH sessions per host (target: 1 per changed host, plus the steps run once per cluster on server 1; 0 per unchanged host)",
        );
        console.log(
            `  first deploy:      ${summarize(deploy, hosts)} (server 1 also runs the ACL step and the keyring install and finish)`,
        );
        console.log(`  no-change re-run:  ${summarize(rerun, hosts)}`);
        console.log(`  one-client change: ${summarize(oneClient, hosts)}`);
        for (const run of oneClient.filter((r) => r.op !== "none")) {
            console.log(`    ${run.op} ${run.name} on ${run.host}`);
        }

        console.log("\nOutputs (every Output the SDK constructs, whoever asks for it), 3 servers + N clients");
        const outputs = await countOutputs(secretKeys, SERVERS, CLIENT_COUNTS);
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
