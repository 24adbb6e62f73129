// The real parts of the end-to-end tests, started from the test setup and cached between runs:
// the Consul binary and its release-mirror files (scripts/e2e/build-consul.sh), the host image
// (scripts/e2e/image.sh), systemd-nspawn hosts on a private bridge (scripts/e2e/hosts.sh, through
// ./hosts.ts, re-exported here), and an HTTP release mirror on the bridge address. Everything here
// talks only to the bridge that hosts.sh created (or loopback), and every wait is bounded.

import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import { log, runScript } from "./hosts";
import { signWithTestKey } from "./release-signing";

export { Hosts, log } from "./hosts";

/** A suite's figures: each logged as a FIGURE line when taken, and all of them again by print() (in after()). */
export class Figures {
    private readonly lines: string[] = [];

    add(line: string): void {
        this.lines.push(line);
        log(`FIGURE ${line}`);
    }

    print(): void {
        log("figures:\n  " + this.lines.join("\n  "));
    }
}

/** Fails with a clear message: the e2e suite never skips because something is missing. */
export function requirePrerequisites(): void {
    const problems: string[] = [];
    if (process.getuid?.() !== 0) problems.push("run as root (systemd-nspawn, bridges, overlay mounts)");
    for (const tool of ["ssh", "ssh-keygen", "python3", "ip", "mount"]) {
        if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) problems.push(`${tool} is not installed`);
    }
    if (problems.length > 0) throw new Error(`e2e prerequisites missing: ${problems.join("; ")}`);
}

export interface Artifacts {
    readonly consulBinary: string;
    /** The cached release-mirror dir: consul_<v>_linux_amd64.zip + consul_<v>_SHA256SUMS. */
    readonly mirrorDir: string;
    readonly consulVersion: string;
    readonly image: string;
    readonly seconds: number;
}

/** Builds (or reuses the cached) Consul and host image, in parallel. */
export async function ensureArtifacts(): Promise<Artifacts> {
    const started = Date.now();
    const [consulBinary, image] = await Promise.all([
        runScript("build-consul.sh", [], 45 * 60_000),
        runScript("image.sh", [], 20 * 60_000),
    ]);
    const out = spawnSync(consulBinary, ["version"], { encoding: "utf8" });
    const version = /^Consul v(\S+)/.exec(out.stdout)?.[1];
    if (!version) throw new Error(`${consulBinary} version printed ${out.stdout}${out.stderr}`);
    return {
        consulBinary,
        mirrorDir: path.dirname(consulBinary),
        consulVersion: version,
        image,
        seconds: (Date.now() - started) / 1000,
    };
}

/** Another Consul release (build-consul.sh, cached): the directory with its binary and mirror files. */
export async function ensureConsulRelease(version: string): Promise<string> {
    const binary = await runScript("build-consul.sh", [], 45 * 60_000, { CONSUL_VERSION: version });
    return path.dirname(binary);
}

/**
 * The release mirror the program's install path downloads from: `<base>/consul/<v>/<files>`,
 * served by python3 -m http.server on the bridge address (symlinks into the cached build dir).
 */
export class Mirror {
    private constructor(
        readonly url: string,
        private readonly dir: string,
        private readonly child: ChildProcess,
    ) {}

    static async start(artifacts: Artifacts, bindAddr: string, port = 8080): Promise<Mirror> {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-mirror-"));
        serveRelease(dir, artifacts.consulVersion, artifacts.mirrorDir);
        const child = spawn("python3", ["-m", "http.server", String(port), "--bind", bindAddr, "--directory", dir], {
            stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
        const url = `http://${bindAddr}:${port}`;
        const mirror = new Mirror(url, dir, child);
        for (let i = 0; i < 50; i++) {
            const r = spawnSync("curl", ["-fsS", "-o", "/dev/null", `${url}/consul/`], { timeout: 2000 });
            if (r.status === 0) return mirror;
            if (child.exitCode !== null) break;
            await sleep(200);
        }
        mirror.stop();
        throw new Error(`the release mirror did not come up at ${url}: ${stderr}`);
    }

    /** Serves one more release (or replaces one): see serveRelease. */
    addRelease(version: string, dir: string): void {
        serveRelease(this.dir, version, dir);
    }

    stop(): void {
        if (this.child.exitCode === null) this.child.kill("SIGTERM");
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

/**
 * Serves `<mirror>/consul/<version>/` from `dir`, which holds consul_<version>_linux_amd64.zip and
 * its SHA256SUMS, and the signature of that list as HashiCorp publishes it: the one in `dir` if
 * there is one (a test that serves a tampered release brings its own), otherwise made with the
 * suite's release key.
 */
function serveRelease(mirror: string, version: string, dir: string): void {
    const versionDir = path.join(mirror, "consul", version);
    fs.mkdirSync(versionDir, { recursive: true });
    const sums = `consul_${version}_SHA256SUMS`;
    for (const file of [`consul_${version}_linux_amd64.zip`, sums, `${sums}.sig`]) {
        const source = path.join(dir, file);
        const served = path.join(versionDir, file);
        fs.rmSync(served, { force: true });
        if (file.endsWith(".sig") && !fs.existsSync(source)) {
            signWithTestKey(path.join(dir, sums), served);
            continue;
        }
        if (!fs.existsSync(source)) throw new Error(`release mirror file ${source} is missing (build-consul.sh)`);
        fs.symlinkSync(source, served);
    }
}

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

export interface ApiOptions {
    readonly ca: string;
    readonly token?: string;
    readonly cert?: string;
    readonly key?: string;
    readonly method?: string;
    readonly body?: string;
    readonly timeoutMs?: number;
    readonly port?: number;
}

export interface ApiResponse {
    readonly status: number;
    readonly body: string;
}

/** One HTTPS request to a test host's Consul API, verified with our CA; rejects on network errors. */
export function api(address: string, pathAndQuery: string, opts: ApiOptions): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
        const req = https.request(
            {
                host: address,
                port: opts.port ?? 8501,
                path: pathAndQuery,
                method: opts.method ?? "GET",
                ca: opts.ca,
                cert: opts.cert,
                key: opts.key,
                headers: opts.token ? { "X-Consul-Token": opts.token } : {},
                timeout: opts.timeoutMs ?? 10_000,
                agent: false,
            },
            (res) => {
                let body = "";
                res.on("data", (d: Buffer) => (body += d.toString()));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
                res.on("error", reject);
            },
        );
        const what = `${opts.method ?? "GET"} https://${address}:${opts.port ?? 8501}${pathAndQuery}`;
        req.on("timeout", () => req.destroy(new Error(`${what}: no answer within ${opts.timeoutMs ?? 10_000} ms`)));
        req.on("error", (err) => reject(new Error(`${what}: ${err.message}`)));
        req.end(opts.body);
    });
}

/** The leader as one server sees it ("" if none or unreachable). */
export async function leaderOf(address: string, ca: string, timeoutMs = 1000): Promise<string> {
    return (await leaderAnswer(address, ca, timeoutMs)) ?? "";
}

/** The leader as one server answers ("" for none), or undefined if it did not answer in time. */
async function leaderAnswer(address: string, ca: string, timeoutMs: number): Promise<string | undefined> {
    try {
        const r = await api(address, "/v1/status/leader", { ca, timeoutMs });
        return r.status === 200 ? (JSON.parse(r.body) as string) : "";
    } catch {
        return undefined;
    }
}

/** Polls until `check` is true; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 250) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (await check().catch(() => false)) return;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(everyMs);
    }
}

/**
 * Polls /v1/status/leader on every server every `everyMs` (`ticks` counts the polls) until stop(),
 * or for `maxMs` at most. `firstLeaderAt` is the time of the first tick on which a server reported
 * a leader. After it, a tick is leaderless when no server reports one (each answer bounded by
 * max(everyMs, 300) ms; no answer counts as none); a gap runs from its first leaderless tick to
 * the next tick with a leader, and `longestGapMs` is the longest. Ticks before the first leader
 * belong to no gap. stop() ends the polling and closes a gap still open at that moment (it ends
 * then); it adds no tick of its own.
 */
export class LeaderWatch {
    longestGapMs = 0;
    firstLeaderAt?: number;
    ticks = 0;
    private gapStart?: number;
    private running = true;
    private loop: Promise<void>;
    /** Per tick: the leaders reported (for debugging). */
    readonly leaders = new Set<string>();
    /** The longest gap's ticks: how many servers answered "no leader" and how many did not answer. */
    longestGapDetail = "";
    private gapTicks: string[] = [];

    constructor(
        private readonly addresses: readonly string[],
        private readonly ca: string,
        everyMs = 100,
        maxMs = 20 * 60_000,
    ) {
        const deadline = Date.now() + maxMs;
        this.loop = (async () => {
            while (this.running && Date.now() < deadline) {
                const tickAt = Date.now();
                const seen = await Promise.all(
                    this.addresses.map((a) => leaderAnswer(a, this.ca, Math.max(everyMs, 300))),
                );
                this.ticks++;
                const any = seen.find((l) => l !== undefined && l !== "");
                if (any) {
                    this.leaders.add(any);
                    if (this.firstLeaderAt === undefined) this.firstLeaderAt = tickAt;
                    if (this.gapStart !== undefined) this.endGap(tickAt);
                } else if (this.firstLeaderAt !== undefined) {
                    if (this.gapStart === undefined) this.gapStart = tickAt;
                    const silent = seen.filter((l) => l === undefined).length;
                    this.gapTicks.push(`${seen.length - silent} said none/${silent} silent`);
                }
                await sleep(Math.max(0, everyMs - (Date.now() - tickAt)));
            }
        })();
    }

    private endGap(at: number): void {
        const ms = at - (this.gapStart as number);
        if (ms > this.longestGapMs) {
            this.longestGapMs = ms;
            this.longestGapDetail = this.gapTicks.join(", ");
        }
        this.gapStart = undefined;
        this.gapTicks = [];
    }

    async stop(): Promise<void> {
        this.running = false;
        await this.loop;
        if (this.gapStart !== undefined) this.endGap(Date.now());
    }
}
