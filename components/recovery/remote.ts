// The recovery's SSH sessions (scripts/recover-quorum.ts drives them): the inspection of every
// server, one phase on each survivor, and the final wait for a leader. Each session runs one of
// ./scripts.ts's scripts as root over OpenSSH with the host's pinned key (./ssh.ts).

import { spawn } from "child_process";
import { hostPort } from "../agent";
import type { Host, Settings } from "../config";
import { wrapForUser } from "../vm";
import type { RecoveryPlan } from "./decide";
import {
    nothingAnswered,
    Observation,
    parseHostReport,
    parseKeyValues,
    parseRaftConfiguration,
    raftHost,
} from "./observe";
import { renderPeersJson } from "./peers";
import { inspectScript, RecoverPhase, recoverScript } from "./scripts";
import { sshArgs } from "./ssh";

/** The command's output: one line to stdout. */
export const say = (line: string): void => void process.stdout.write(`${line}\n`);

/** How to reach the servers, and how long a phase may wait. */
export interface Access {
    readonly settings: Settings;
    readonly servers: readonly Host[];
    readonly user: string;
    readonly hostKeys: Readonly<Record<string, string>>;
    readonly keyFile: string;
    readonly knownHostsFile: string;
    readonly waitSeconds: number;
}

interface Session {
    readonly code: number;
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs one script on a server as root (sudo when the user is not root). */
function run(a: Access, host: Host, script: string, timeoutMs: number): Promise<Session> {
    const args = sshArgs(
        { host, user: a.user, hostKey: a.hostKeys[host.name], keyFile: a.keyFile, knownHostsFile: a.knownHostsFile },
        wrapForUser(script, a.user),
    );
    return new Promise((resolve) => {
        const child = spawn("ssh", args, { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code: code ?? 255, stdout, stderr: stderr.trim() || (code === null ? "timed out" : "") });
        });
    });
}

export async function inspect(a: Access): Promise<Observation[]> {
    const https = a.settings.ports.https;
    return Promise.all(
        a.servers.map(async (host): Promise<Observation> => {
            const r = await run(a, host, inspectScript({ nodeName: host.name, httpsPort: https }), 30_000);
            // 255 is ssh's own failure; only a silent address counts as unreachable (nothingAnswered).
            const error = r.stderr.split("\n").pop();
            if (r.code === 255) return { name: host.name, reachable: !nothingAnswered(r.stderr), error };
            if (r.code !== 0) return { name: host.name, reachable: true, error: r.stderr };
            try {
                return { name: host.name, reachable: true, report: parseHostReport(r.stdout) };
            } catch (err) {
                return { name: host.name, reachable: true, error: (err as Error).message };
            }
        }),
    );
}

/** When the recovery's first stop began: each phase's lines say how long after it they came. */
let recoveryStart = 0;

/** Marks the start of the recovery (the first stop). */
export function markRecoveryStart(): number {
    recoveryStart = Date.now();
    return recoveryStart;
}
const elapsed = () => (recoveryStart ? ` (+${((Date.now() - recoveryStart) / 1000).toFixed(1)} s)` : "");

/**
 * One phase on the named survivors, in serverHosts order, one after the other; the join phase on
 * all at once (each can wait behind its own agent's retry_join). Returns the survivors it finished.
 */
export async function phase(
    a: Access,
    plan: RecoveryPlan,
    which: RecoverPhase,
    names: readonly string[],
): Promise<string[]> {
    const one = async (s: RecoveryPlan["survivors"][number]): Promise<string> => {
        const host = a.servers.find((h) => h.name === s.name) as Host;
        const script = recoverScript({
            nodeName: s.name,
            httpsPort: a.settings.ports.https,
            phase: which,
            peersJson: renderPeersJson(plan.survivors),
            joinAddress: hostPort(raftHost(s.raftAddress), a.settings.ports.serfLan),
            waitSeconds: a.waitSeconds,
        });
        const r = await run(a, host, script, (a.waitSeconds + 60) * 1000);
        if (r.code !== 0) throw new Error(`${s.name} ${which}: ${(r.stderr || r.stdout).trim()}`);
        for (const line of r.stdout.trim().split("\n")) if (line && !line.includes("=")) say(`  ${line}${elapsed()}`);
        return s.name;
    };
    const survivors = plan.survivors.filter((p) => names.includes(p.name));
    if (which === "join") return Promise.all(survivors.map(one));
    const done: string[] = [];
    for (const s of survivors) done.push(await one(s));
    return done;
}

/** After the start: every survivor sees one leader, and the Raft configuration is the survivors. */
export async function waitForLeader(a: Access, plan: RecoveryPlan): Promise<string> {
    const answers = await Promise.all(
        plan.survivors.map(async (s) => {
            const host = a.servers.find((h) => h.name === s.name) as Host;
            const script = recoverScript({
                nodeName: s.name,
                httpsPort: a.settings.ports.https,
                phase: "wait",
                peersJson: "",
                joinAddress: "",
                waitSeconds: a.waitSeconds,
            });
            const r = await run(a, host, script, (a.waitSeconds + 60) * 1000);
            if (r.code !== 0) throw new Error(`${s.name} wait: ${(r.stderr || r.stdout).trim()}`);
            return { name: s.name, values: parseKeyValues(r.stdout) };
        }),
    );
    const leaders = new Set(answers.map((x) => x.values.get("leader")));
    if (leaders.size !== 1) throw new Error(`the survivors see different leaders: ${[...leaders].join(", ")}`);
    const expected = plan.peers
        .map((p) => `${p.id}@${p.address}`)
        .sort()
        .join(", ");
    for (const x of answers) {
        const raft = parseRaftConfiguration(x.values.get("raft") ?? '{"Servers":[]}');
        const seen = raft
            .filter((p) => p.voter)
            .map((p) => `${p.id}@${p.address}`)
            .sort()
            .join(", ");
        if (seen !== expected) throw new Error(`${x.name}'s Raft voters are ${seen || "unknown"}, not ${expected}`);
        say(
            `  ${x.name}: leader ${x.values.get("leader")}${elapsed()}, agent ${x.values.get("active")}, voters ${raft.map((p) => p.node).join(", ")}, peers.json ${x.values.get("peers_json") === "no" ? "consumed" : "still there"}`,
        );
    }
    return [...leaders][0] ?? "";
}
