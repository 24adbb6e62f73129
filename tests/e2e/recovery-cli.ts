// The recovery command as the lost-quorum suites run it (./recovery.e2e.ts, ./recovery-five.e2e.ts):
// from a stack file written as an operator's Pulumi.<stack>.yaml, as a child process
// (`npm run recover-quorum`), and what a refusal must leave behind.

import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as yaml from "js-yaml";
import { REPO_ROOT } from "../mocks";
import { mainPid } from "./checks";
import { Hosts, log } from "./infra";

const LIST_KEYS = ["serverHosts", "clientHosts", "sshHostKeys", "deadHosts"];

export interface CliRun {
    readonly code: number;
    readonly stdout: string;
    readonly ms: number;
}

/** The stack file an operator has: vmStackConfig's values, lists as YAML lists, under the project's prefix. */
export function writeStackFile(file: string, cfg: Record<string, string>): void {
    const entries = Object.entries(cfg).map(([k, v]) => [
        `consul:${k}`,
        LIST_KEYS.includes(k) ? (JSON.parse(v) as string[]) : v,
    ]);
    fs.writeFileSync(file, yaml.dump({ config: Object.fromEntries(entries) }));
}

/** `npm run recover-quorum -- --config-file <file> <args>`, its output logged. */
export function recoverQuorum(file: string, args: string[]): Promise<CliRun> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn("npm", ["run", "--silent", "recover-quorum", "--", "--config-file", file, ...args], {
            cwd: REPO_ROOT,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        const timer = setTimeout(() => child.kill("SIGKILL"), 10 * 60_000);
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => process.stderr.write(d));
        child.on("error", reject);
        child.on("close", (code) => {
            clearTimeout(timer);
            log(`recover-quorum ${args.join(" ")} → exit ${code}:\n${stdout}`);
            resolve({ code: code ?? -1, stdout, ms: Date.now() - started });
        });
    });
}

/** What a refusal must leave: the same agent processes, and no peers.json anywhere. */
export async function assertUntouched(hosts: Hosts, servers: number[], pids: number[]): Promise<void> {
    assert.deepStrictEqual(await Promise.all(servers.map((i) => mainPid(hosts, i))), pids, "an agent was restarted");
    for (const i of servers) {
        const r = await hosts.exec(i, "ls /var/lib/consul/raft/peers.json 2>/dev/null");
        assert.strictEqual(r.stdout, "", `host ${i} has a peers.json`);
    }
}

/** The command's own figure: seconds from its first stop to a leader every survivor sees. */
export function recoverySeconds(stdout: string): string {
    const m = /Recovered: leader \S+, ([\d.]+) s from the first stop/.exec(stdout);
    assert.ok(m, "no recovery time printed");
    return m[1];
}
