// The pod tests' systemd-nspawn hosts (scripts/e2e/hosts.sh, through ../e2e/hosts.ts): boot, run
// a root shell script on a host over SSH, copy files into a host's root, tear down.

import * as childProcess from "child_process";
import * as fs from "fs";
import { ExecResult, Hosts, TestHost } from "../e2e/hosts";

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

export interface Host extends TestHost {
    /** 1-based, as hosts.sh and the shared Hosts number them. */
    readonly index: number;
}

/**
 * The pod tests' hosts: ../e2e/hosts.ts's Hosts (in its own temporary directory, with time for
 * hosts.sh to build the host image cold), with the synchronous steps a kubelet takes: a root shell
 * script on a host, its exit code and output.
 */
export class PodHosts {
    hosts: Host[] = [];
    private booted?: Hosts;

    async boot(count: number): Promise<Host[]> {
        this.booted = await Hosts.up(count, { tmpPrefix: "consul-k8s-pods-", upTimeoutMs: 20 * 60_000 });
        this.hosts = this.booted.hosts.map((h, i) => ({ ...h, index: i + 1 }));
        return this.hosts;
    }

    private get shared(): Hosts {
        if (!this.booted) throw new Error("the hosts are not booted");
        return this.booted;
    }

    /** The overlay root of host i, mounted on this machine: files put here appear on the host. */
    root(index: number): string {
        return this.shared.root(index);
    }

    /** Runs a bash script as root on host i (over SSH, script on stdin). */
    run(index: number, script: string, timeoutMs = 120_000): ExecResult {
        return this.shared.execSync(index, "bash -s", { stdin: script, timeoutMs });
    }

    /** Like run, but throws with the output when the script fails. */
    must(index: number, script: string, what: string, timeoutMs?: number): string {
        const r = this.run(index, script, timeoutMs);
        if (r.code !== 0)
            throw new Error(`${what} on host ${index} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
        return r.stdout;
    }

    async down(): Promise<void> {
        await this.booted?.down();
        this.booted = undefined;
    }
}
