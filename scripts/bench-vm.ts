// Figures for the VM topology, under the test mocks (no hosts are contacted):
//   - resources per host;
//   - SSH sessions (remote commands) per host for a first deploy, a no-change re-run and a
//     one-client change, by the command provider's diff rules applied to the recorded inputs;
//   - program evaluation time for 3 servers + 10/100/1000 clients.
// Run: npm run bench   (or: npx ts-node --transpile-only scripts/bench-vm.ts)
//
// Evaluation time is measured twice: in this process (ts-node with source-map-support, as the
// tests and `pulumi up` of a TypeScript program run), and in a child process running the same
// code compiled by tsc into bin/ with plain node. The Pulumi SDK captures a stack trace for every
// internal promise (about 70 per host here); source-map-support makes each capture ~10x dearer.

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { COMMAND_TYPE, CommandRun, diffCommands, sessionsPerHost } from "../tests/command-diff";
import { ConsulMocks, evaluateProgram, RecordedResource, stackFileConfig, withOperatorHome } from "../tests/mocks";
import { withPinnedKeys } from "../tests/vm/fixtures";

function vmConfig(servers: number, clients: number): Record<string, string> {
    const { config } = stackFileConfig("prod");
    return withPinnedKeys({
        ...config,
        serverCount: String(servers),
        serverHosts: JSON.stringify(
            Array.from({ length: servers }, (_, i) => `consul-server-${i + 1}=10.20.0.${11 + i}`),
        ),
        clientHosts: JSON.stringify(
            Array.from(
                { length: clients },
                (_, i) => `app-${i + 1}=10.20.${1 + Math.floor(i / 200)}.${(i % 200) + 21}`,
            ),
        ),
    });
}

function summarize(runs: readonly CommandRun[], hostCount: number): string {
    const perHost = sessionsPerHost(runs);
    const counts = [...perHost.values()];
    const touched = counts.filter((n) => n > 0).length;
    const max = counts.length > 0 ? Math.max(...counts) : 0;
    const total = counts.reduce((a, b) => a + b, 0);
    return `${total} sessions, ${touched}/${hostCount} hosts touched, max ${max} per changed host`;
}

async function evaluationTimes(secretKeys: string[]): Promise<[number, number][]> {
    const timings: [number, number][] = [];
    for (const n of [10, 100, 1000]) {
        const start = process.hrtime.bigint();
        const result = await evaluateProgram(vmConfig(3, n), { stack: "prod", secretKeys });
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        const commands = result.mocks.resources.filter((r: RecordedResource) => r.type === COMMAND_TYPE).length;
        timings.push([n, ms]);
        console.log(
            `  N=${String(n).padStart(4)}: ${(ms / 1000).toFixed(2)} s, ${result.mocks.resources.length} resources, ${commands} commands`,
        );
    }
    const [, t100] = timings[1];
    const [, t1000] = timings[2];
    console.log(`  ratio 1000/100 clients: ${(t1000 / t100).toFixed(1)}x (10x would be linear)`);
    return timings;
}

/** Compiles the project into bin/ and runs the evaluation timings there with plain node. */
function compiledEvaluationTimes(): void {
    const root = path.join(__dirname, "..");
    const bin = path.join(root, "bin");
    const tsc = spawnSync(process.execPath, [require.resolve("typescript/bin/tsc"), "--outDir", bin], {
        cwd: root,
        encoding: "utf8",
    });
    if (tsc.status !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
    for (const f of fs.readdirSync(root).filter((n) => /^Pulumi(\..+)?\.yaml$/.test(n))) {
        fs.copyFileSync(path.join(root, f), path.join(bin, f));
    }
    // The VM host scripts are .sh files the modules read next to themselves; tsc copies only code.
    const components = path.join(root, "components");
    for (const f of fs
        .readdirSync(components, { recursive: true, encoding: "utf8" })
        .filter((n) => n.endsWith(".sh"))) {
        fs.mkdirSync(path.dirname(path.join(bin, "components", f)), { recursive: true });
        fs.copyFileSync(path.join(components, f), path.join(bin, "components", f));
    }
    const child = spawnSync(process.execPath, [path.join(bin, "scripts", "bench-vm.js"), "--evaluation-only"], {
        cwd: root,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
    });
    process.stdout.write(child.stdout);
    // A figure missing is a failed benchmark, not a shorter report.
    if (child.status !== 0) throw new Error(`the compiled evaluation exited ${child.status}`);
}

async function main(): Promise<void> {
    const operator = withOperatorHome();
    const { secretKeys } = stackFileConfig("prod");
    try {
        if (process.argv.includes("--evaluation-only")) {
            await evaluateProgram(vmConfig(3, 1), { stack: "prod", secretKeys });
            await evaluationTimes(secretKeys);
            return;
        }
        // Warm-up: module loading and the first key generation are not the program's cost.
        await evaluateProgram(vmConfig(3, 1), { stack: "prod", secretKeys });

        console.log("VM topology benchmark (mocked engine; sessions = remote commands = SSH round trips)\n");

        const servers = 3;
        const clients = 10;
        const config = vmConfig(servers, clients);
        const first = await evaluateProgram(config, { stack: "prod", secretKeys });
        const resources = first.mocks.resources;
        const perHost = resources.filter((r) => /^consul-vm-(server|client)-/.test(r.name));
        console.log(`Resources (3 servers + ${clients} clients): ${resources.length} in all`);
        console.log(
            `  per host: ${perHost.length / (servers + clients)} (${[...new Set(perHost.map((r) => r.type))].join(" + ")})`,
        );
        console.log(
            `  shared: ${resources.length - perHost.length} (PKI, gossip key, ACL tokens, ACL step, components)`,
        );

        const hosts = servers + clients;
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

        console.log("\nEvaluation time, 3 servers + N clients (target: linear, < 5 s at 1000)");
        console.log(" under ts-node with source maps (as the tests run):");
        await evaluationTimes(secretKeys);
        console.log(" compiled with tsc, plain node:");
        compiledEvaluationTimes();
    } finally {
        operator.restore();
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
