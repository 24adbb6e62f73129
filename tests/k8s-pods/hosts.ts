// Thin wrapper over scripts/e2e/hosts.sh (systemd-nspawn hosts on a private bridge) for the pod
// tests: boot, run a root shell script on a host over SSH, copy files into a host's root, tear down.

import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "../mocks";

export const HOSTS_SH = path.join(REPO_ROOT, "scripts/e2e/hosts.sh");

export interface Host {
    readonly index: number;
    readonly name: string;
    readonly address: string;
}

export interface RunResult {
    readonly status: number;
    readonly stdout: string;
    readonly stderr: string;
}

/** Fails with a clear message when something the pod tests need is missing on this machine. */
export function checkPrerequisites(): void {
    const missing: string[] = [];
    if (process.getuid?.() !== 0) missing.push("root (systemd-nspawn, bridges, overlayfs)");
    // hosts.sh installs systemd-container, iproute2, openssh-client and jq with apt-get itself.
    for (const tool of ["apt-get", "dpkg-query", "sha256sum"]) {
        if (childProcess.spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) missing.push(tool);
    }
    if (!fs.existsSync("/usr/local/go/bin/go") && childProcess.spawnSync("sh", ["-c", "command -v go"]).status !== 0)
        missing.push("Go (to build Consul, scripts/e2e/build-consul.sh)");
    if (missing.length > 0)
        throw new Error(
            `npm run test:k8s-pods needs: ${missing.join(", ")} (it boots systemd-nspawn hosts with scripts/e2e/hosts.sh, which installs its own Debian packages, and builds Consul with Go)`,
        );
}

export class Hosts {
    readonly workdir: string;
    hosts: Host[] = [];
    private up = false;

    constructor() {
        this.workdir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "consul-k8s-pods-")), "hosts");
    }

    boot(count: number): Host[] {
        const run = childProcess.spawnSync("bash", [HOSTS_SH, "up", this.workdir, String(count)], {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "inherit"],
            timeout: 20 * 60_000,
        });
        this.up = true;
        if (run.status !== 0) throw new Error(`hosts.sh up failed (exit ${run.status})`);
        const list = JSON.parse(fs.readFileSync(path.join(this.workdir, "hosts.json"), "utf8")) as {
            name: string;
            address: string;
        }[];
        this.hosts = list.map((h, i) => ({ index: i + 1, name: h.name, address: h.address }));
        return this.hosts;
    }

    /** The overlay root of host i, mounted on this machine: files put here appear on the host. */
    root(index: number): string {
        return path.join(this.workdir, "hosts", String(index), "root");
    }

    /** Runs a bash script as root on host i (over SSH, script on stdin). */
    run(index: number, script: string, timeoutMs = 120_000): RunResult {
        const r = childProcess.spawnSync("bash", [HOSTS_SH, "ssh", this.workdir, String(index), "bash -s"], {
            input: script,
            encoding: "utf8",
            timeout: timeoutMs,
            maxBuffer: 64 * 1024 * 1024,
        });
        return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
    }

    /** Like run, but throws with the output when the script fails. */
    must(index: number, script: string, what: string, timeoutMs?: number): string {
        const r = this.run(index, script, timeoutMs);
        if (r.status !== 0)
            throw new Error(`${what} on host ${index} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
        return r.stdout;
    }

    down(): void {
        if (!this.up) return;
        childProcess.spawnSync("bash", [HOSTS_SH, "down", this.workdir], { stdio: ["ignore", "inherit", "inherit"] });
        fs.rmSync(path.dirname(this.workdir), { recursive: true, force: true });
        this.up = false;
    }
}
