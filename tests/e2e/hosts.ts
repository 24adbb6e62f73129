// The one wrapper over scripts/e2e/hosts.sh (systemd-nspawn hosts on a private bridge) and the
// runner for the other scripts/e2e scripts, shared by the replay suite (./infra.ts re-exports it),
// the engine suite (../engine) and the real Kubernetes node (../k8s-real): boot, run commands as
// root over SSH, cut and restore a host's network, power a host off and on, swap its host key,
// copy files into its root, tear down. Everything talks only to the bridge hosts.sh created, and
// every wait is bounded.

import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "../mocks";

const SCRIPTS = path.join(REPO_ROOT, "scripts", "e2e");

export function log(line: string): void {
    process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
}

/**
 * Runs scripts/e2e/<script> with bash, its stderr passed through as it comes; resolves with the last
 * line of its stdout, rejects on a non-zero exit or after `timeoutMs` (SIGTERM).
 */
export function runScript(
    script: string,
    args: string[],
    timeoutMs: number,
    env: Record<string, string> = {},
): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn("bash", [path.join(SCRIPTS, script), ...args], {
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, ...env },
        });
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => {
            stderr += d.toString();
            process.stderr.write(d);
        });
        child.on("close", (code) => {
            clearTimeout(timer);
            if (code === 0) resolve(stdout.trim().split("\n").pop() ?? "");
            else reject(new Error(`${script} ${args.join(" ")} failed (exit ${code}):\n${stderr.slice(-3000)}`));
        });
    });
}

/** One entry of hosts.sh's hosts.json. */
export interface TestHost {
    readonly name: string;
    readonly address: string;
    readonly port: number;
    readonly user: string;
    readonly machine: string;
    readonly veth: string;
}

export interface ExecResult {
    readonly code: number;
    readonly stdout: string;
    readonly stderr: string;
}

export interface ExecOptions {
    readonly stdin?: string;
    /** Default 60 s; then ssh is killed (SIGKILL) and the exit code is 255. */
    readonly timeoutMs?: number;
}

export interface HostsOptions {
    /** Prefix of the temporary directory that holds hosts.sh's workdir (one per suite). */
    readonly tmpPrefix?: string;
    /**
     * Bound for `hosts.sh up`. It runs image.sh itself: 5 minutes is enough once the image is
     * cached (the e2e suites build it first); a suite that may build it cold needs more.
     */
    readonly upTimeoutMs?: number;
    /** Hosts (1-based) that are Kubernetes nodes (hosts.sh HOSTS_K8S_NODES), with the binaries in `k8sBin`. */
    readonly k8sNodes?: readonly number[];
    readonly k8sBin?: string;
}

/** n nspawn hosts from hosts.sh; `down()` must run in an after() hook. */
export class Hosts {
    hosts: TestHost[] = [];
    /** Each host's SSH host key as its sshd presents it ("ssh-ed25519 AAAA..."), by host number - 1. */
    hostKeys: string[] = [];
    sshKeyPath = "";
    bridgeAddr = "";
    private constructor(readonly workdir: string) {}

    /** Boots n hosts; on a failure tears down what was started, then throws. */
    static async up(n: number, options: HostsOptions = {}): Promise<Hosts> {
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), options.tmpPrefix ?? "consul-e2e-"));
        const wd = path.join(tmp, "hosts");
        const h = new Hosts(wd);
        try {
            const nodes = options.k8sNodes ?? [];
            const env: Record<string, string> = nodes.length
                ? { HOSTS_K8S_NODES: nodes.join(" "), HOSTS_K8S_BIN: options.k8sBin ?? "" }
                : {};
            await runScript("hosts.sh", ["up", wd, String(n)], options.upTimeoutMs ?? 5 * 60_000, env);
        } catch (err) {
            await h.down();
            throw err;
        }
        h.hosts = JSON.parse(fs.readFileSync(path.join(wd, "hosts.json"), "utf8")) as TestHost[];
        h.sshKeyPath = path.join(wd, "ssh_key");
        h.bridgeAddr = fs.readFileSync(path.join(wd, "bridge_addr"), "utf8").trim();
        await h.readHostKeys();
        return h;
    }

    /** Reads every host's ed25519 host key (generated at first boot, so each host has its own). */
    async readHostKeys(): Promise<void> {
        this.hostKeys = await Promise.all(
            this.hosts.map(async (_, k) =>
                (await this.run(k + 1, "cat /etc/ssh/ssh_host_ed25519_key.pub"))
                    .trim()
                    .split(/\s+/)
                    .slice(0, 2)
                    .join(" "),
            ),
        );
    }

    /** Gives host i a new ed25519 host key (as an impostor would present), keeping its own aside. */
    async newHostKey(i: number): Promise<string> {
        await this.run(
            i,
            "mkdir -p /root/own-host-key && mv /etc/ssh/ssh_host_ed25519_key* /root/own-host-key/ && " +
                "ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && systemctl reload ssh",
        );
        await this.readHostKeys();
        return this.hostKeys[i - 1];
    }

    /** Puts back the host key newHostKey set aside. */
    async restoreHostKey(i: number): Promise<void> {
        await this.run(
            i,
            "mv /root/own-host-key/ssh_host_ed25519_key* /etc/ssh/ && rmdir /root/own-host-key && systemctl reload ssh",
        );
        await this.readHostKeys();
    }

    async down(): Promise<void> {
        await runScript("hosts.sh", ["down", this.workdir], 5 * 60_000).catch((err: Error) => log(err.message));
        fs.rmSync(path.dirname(this.workdir), { recursive: true, force: true });
    }

    /** The overlay root of host i, mounted on this machine: files put here appear on the host. */
    root(i: number): string {
        return path.join(this.workdir, "hosts", String(i), "root");
    }

    async netCut(i: number): Promise<void> {
        await runScript("hosts.sh", ["net-cut", this.workdir, String(i)], 30_000);
    }

    async netRestore(i: number): Promise<void> {
        await runScript("hosts.sh", ["net-restore", this.workdir, String(i)], 30_000);
    }

    /** A clean shutdown of host i: the machine is off, its disk kept. */
    async powerOff(i: number): Promise<void> {
        await runScript("hosts.sh", ["power-off", this.workdir, String(i)], 60_000);
    }

    /** Boots host i again after powerOff and waits for sshd. */
    async boot(i: number): Promise<void> {
        await runScript("hosts.sh", ["boot", this.workdir, String(i)], 120_000);
    }

    /**
     * Drops the SSH session in which host i runs the apply script, as a network drop would: kills
     * the script's sshd session process, so the deploy side loses the connection mid-step. (The
     * pattern's brackets keep this command's own shell from matching it.)
     */
    async dropApplySession(i: number): Promise<void> {
        await this.run(
            i,
            [
                "p=$(pgrep -f 'BUNDLE_SHA[2]56' | head -n 1)",
                'test -n "$p" || { echo "no apply script is running" >&2; exit 1; }',
                'while [ -n "$p" ] && [ "$p" != 1 ] && [ "$(cat "/proc/$p/comm")" != sshd ]; do p=$(ps -o ppid= -p "$p" | tr -d " "); done',
                'test "$p" != 1 || { echo "the apply script has no sshd parent" >&2; exit 1; }',
                'kill -KILL "$p"',
            ].join("\n"),
        );
    }

    /** The ssh arguments up to the remote command, for host i (1-based) as root. */
    sshOptions(i: number): string[] {
        const host = this.hosts[i - 1];
        return [
            ...["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"],
            ...["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes", "-o", "ControlPath=none"],
            ...["-i", this.sshKeyPath, `root@${host.address}`, "--"],
        ];
    }

    /** The ssh arguments that run `command` on host i (1-based) as root. */
    private sshArgs(i: number, command: string): string[] {
        return [...this.sshOptions(i), command];
    }

    /** Runs a command on host i (1-based) as root; never throws on a non-zero exit. */
    exec(i: number, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
        const args = this.sshArgs(i, command);
        return new Promise((resolve) => {
            const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
            child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
            child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            child.on("close", (code) => {
                clearTimeout(timer);
                resolve({ code: code ?? 255, stdout, stderr });
            });
            child.stdin.on("error", () => undefined);
            child.stdin.end(opts.stdin ?? "");
        });
    }

    /** exec, blocking (for callers that are synchronous, like the pod tests' kubelet steps). */
    execSync(i: number, command: string, opts: ExecOptions = {}): ExecResult {
        const r = spawnSync("ssh", this.sshArgs(i, command), {
            input: opts.stdin ?? "",
            encoding: "utf8",
            timeout: opts.timeoutMs ?? 60_000,
            killSignal: "SIGKILL",
            maxBuffer: 64 * 1024 * 1024,
        });
        return { code: r.status ?? 255, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
    }

    /** Like exec, but throws with the output on a non-zero exit. */
    async run(i: number, command: string, opts: ExecOptions = {}): Promise<string> {
        const r = await this.exec(i, command, opts);
        if (r.code === 0) return r.stdout;
        // A unit that failed to start says why only in its journal (the hosts are gone after the run).
        const unit = /systemctl (?:re)?start (\S+)/.exec(command)?.[1];
        const journal = unit
            ? await this.exec(i, `journalctl -u ${unit} --no-pager -o short-precise -n 40`)
            : undefined;
        const why = journal ? `\n${unit}'s journal:\n${journal.stdout}${journal.stderr}` : "";
        throw new Error(`host ${i}: '${command}' exited ${r.code}: ${r.stdout}${r.stderr}${why}`);
    }
}
