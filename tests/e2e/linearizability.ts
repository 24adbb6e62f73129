// A Jepsen-style linearizability test of Consul's KV store: `KvWorkload` runs concurrent clients
// doing puts, CAS and ?consistent reads against the servers and records every operation's
// invocation and completion; `checkHistory` hands the history to the Go checker in
// ./linearizability (porcupine, a register model per key; the format is documented in its main.go).

import * as crypto from "crypto";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import { spawnSync } from "child_process";

/** One recorded operation, as the checker reads it (see linearizability/main.go). */
export interface HistoryOp {
    client: number;
    key: string;
    op: "put" | "cas" | "read";
    /** put, cas: the value written. */
    value?: string;
    /** cas: the value read together with the ModifyIndex passed as ?cas= ("" = absent, ?cas=0). */
    expected?: string;
    /** read: the value read ("" = absent). */
    result?: string;
    /** put: true; cas: Consul's answer. */
    ok?: boolean;
    /** The write may or may not have taken effect (timeout, network error, 5xx). */
    unknown: boolean;
    /** Nanoseconds since the workload started (process.hrtime), when sent and when answered. */
    invokeNs: number;
    returnNs: number;
}

export interface History {
    ops: HistoryOp[];
}

export interface CheckResult {
    ops: number;
    keys: number;
    linearizable: boolean;
    badKeys: string[];
    unknownOps: number;
    /** Keys whose check did not finish in time (also in badKeys). */
    timedOutKeys: string[];
    /** porcupine's visualisations of the bad keys. */
    htmlFiles: string[];
}

const checkerDir = path.join(__dirname, "linearizability");
const checkerSources = ["go.mod", "go.sum", "main.go"];

/** The Go toolchain: `go` on PATH, else /usr/local/go/bin/go; throws naming what to install. */
export function goBinary(): string {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter).filter((d) => d !== "")) {
        const candidate = path.join(dir, "go");
        try {
            fs.accessSync(candidate, fs.constants.X_OK);
            if (fs.statSync(candidate).isFile()) return candidate;
        } catch {
            // not here
        }
    }
    if (fs.existsSync("/usr/local/go/bin/go")) return "/usr/local/go/bin/go";
    throw new Error(
        "the linearizability checker needs Go (1.22 or later): no `go` on PATH nor /usr/local/go/bin/go; " +
            "install it (e.g. the golang-go Debian package or the Go tarball under /usr/local/go)",
    );
}

/**
 * Builds the Go checker (cached by a hash of its sources under
 * ${XDG_CACHE_HOME:-~/.cache}/consul-pulumi/lincheck-<hash>/lincheck) and returns the binary's path.
 * Throws with the build output when the build fails.
 */
export function buildChecker(): string {
    const hash = crypto.createHash("sha256");
    for (const f of checkerSources) {
        const p = path.join(checkerDir, f);
        if (fs.existsSync(p)) hash.update(`${f}\0`).update(fs.readFileSync(p)).update("\0");
    }
    const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
    const dir = path.join(cacheHome, "consul-pulumi", `lincheck-${hash.digest("hex").slice(0, 16)}`);
    const binary = path.join(dir, "lincheck");
    if (fs.existsSync(binary)) return binary;

    const go = goBinary();
    fs.mkdirSync(dir, { recursive: true });
    // Built under a temporary name and renamed, so that concurrent builds never expose half a binary.
    const tmp = path.join(dir, `lincheck.tmp-${process.pid}`);
    const r = spawnSync(go, ["build", "-o", tmp, "."], {
        cwd: checkerDir,
        env: { ...process.env, GOFLAGS: "-mod=mod -buildvcs=false" },
        encoding: "utf8",
        timeout: 10 * 60_000,
    });
    if (r.error || r.status !== 0) {
        fs.rmSync(tmp, { force: true });
        const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
        throw new Error(
            `building the linearizability checker (${go} build in ${checkerDir}) failed: ${why}\n` +
                `${r.stdout}${r.stderr}`,
        );
    }
    fs.renameSync(tmp, binary);
    return binary;
}

/**
 * Writes the history to <outDir>/linearizability-history.json and checks it; visualisations of
 * non-linearizable keys go to <outDir>/linearizability-<key>.html. Throws if the checker fails to run.
 */
export function checkHistory(history: History, outDir: string, checker = buildChecker()): CheckResult {
    fs.mkdirSync(outDir, { recursive: true });
    const historyPath = path.join(outDir, "linearizability-history.json");
    fs.writeFileSync(historyPath, JSON.stringify(history));
    const r = spawnSync(checker, [historyPath, outDir], {
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        timeout: 30 * 60_000,
    });
    if (r.error || (r.status !== 0 && r.status !== 1)) {
        const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
        throw new Error(`linearizability checker ${checker} ${historyPath} failed: ${why}\n${r.stderr}`);
    }
    const line = r.stdout.trim().split("\n").pop() ?? "";
    let result: CheckResult;
    try {
        result = JSON.parse(line) as CheckResult;
    } catch {
        throw new Error(`linearizability checker printed no result: '${r.stdout}'\n${r.stderr}`);
    }
    if (result.linearizable !== (r.status === 0)) {
        throw new Error(`linearizability checker: exit ${r.status} contradicts its result ${line}\n${r.stderr}`);
    }
    return result;
}

export interface WorkloadOptions {
    /** Our CA certificate (PEM) and an ACL token with write access to the lin/ prefix. */
    readonly ca: string;
    readonly token: string;
    /** Keys lin/k0 .. lin/k<keys-1> (default 20). */
    readonly keys?: number;
    /** Concurrent clients (default 3). */
    readonly clients?: number;
    /** Per-request limit; past it the operation's outcome is unknown (default 2000). */
    readonly timeoutMs?: number;
    /** The loops end by themselves after this long (default 20 minutes)... */
    readonly maxDurationMs?: number;
    /** ...or this many operations over all clients (default 200000). */
    readonly maxOps?: number;
}

export interface WorkloadStats {
    /** Operations that completed with a definite answer (reads, puts, CAS true and false). */
    ok: number;
    reads: number;
    puts: number;
    casTrue: number;
    casFalse: number;
    /** Writes whose outcome is unknown (kept in the history) and reads that failed (dropped). */
    unknownWrites: number;
    unknownReads: number;
    /** Definite failures (4xx, unexpected answers): no effect, left out of the history. */
    failed: number;
}

interface Reply {
    status: number;
    body: string;
}

const KV_PREFIX = "lin/";

/**
 * Clients doing random operations on a few keys through random servers, recording a history for
 * `checkHistory`. Every value written is unique (c<client>-<seq>), which the checker relies on.
 * `await start()` (it first deletes the lin/ keys so that every key starts absent), let it run, then
 * `stop()` for the history. Only the given addresses are contacted, and the clients end by themselves
 * after `maxDurationMs` or `maxOps` if stop() is never called.
 */
export class KvWorkload {
    readonly stats: WorkloadStats = {
        ok: 0,
        reads: 0,
        puts: 0,
        casTrue: 0,
        casFalse: 0,
        unknownWrites: 0,
        unknownReads: 0,
        failed: 0,
    };
    /** The first few error messages, for a failing test's report. */
    readonly errors: string[] = [];
    private readonly ops: HistoryOp[] = [];
    private readonly keys: number;
    private readonly clients: number;
    private readonly timeoutMs: number;
    private readonly maxDurationMs: number;
    private readonly maxOps: number;
    private origin = process.hrtime.bigint();
    private startedAt?: number;
    private stoppedAt?: number;
    private stopping = false;
    private issued = 0;
    private loops?: Promise<void>;

    constructor(
        private readonly targets: readonly { address: string }[],
        private readonly opts: WorkloadOptions,
    ) {
        if (targets.length === 0) throw new Error("KvWorkload: no targets");
        this.keys = opts.keys ?? 20;
        this.clients = opts.clients ?? 3;
        this.timeoutMs = opts.timeoutMs ?? 2000;
        this.maxDurationMs = opts.maxDurationMs ?? 20 * 60_000;
        this.maxOps = opts.maxOps ?? 200_000;
    }

    /** Operations answered per second of running time (so far, or until stop()). */
    get opsPerSecond(): number {
        if (this.startedAt === undefined) return 0;
        const seconds = ((this.stoppedAt ?? Date.now()) - this.startedAt) / 1000;
        return seconds > 0 ? this.stats.ok / seconds : 0;
    }

    /**
     * Clears the lin/ keys (so that every key starts absent, as the model assumes), then starts the
     * clients; rejects if the keys could not be cleared (and then no client runs).
     */
    async start(): Promise<void> {
        if (this.loops) throw new Error("KvWorkload: already started");
        const cleared = this.clearKeys();
        this.loops = cleared.then(
            async () => {
                this.origin = process.hrtime.bigint();
                this.startedAt = Date.now();
                const deadline = this.startedAt + this.maxDurationMs;
                await Promise.all([...Array(this.clients).keys()].map((c) => this.loop(c, deadline)));
            },
            () => undefined,
        );
        await cleared;
    }

    /** Ends the clients (each finishes its current operation: at most two requests) and returns the history. */
    async stop(): Promise<History> {
        this.stopping = true;
        if (this.loops) await this.loops;
        this.stoppedAt ??= Date.now();
        return { ops: [...this.ops] };
    }

    private async clearKeys(): Promise<void> {
        const problems: string[] = [];
        for (const target of this.targets) {
            try {
                const r = await this.request(target.address, "DELETE", `${KV_PREFIX}?recurse`);
                if (r.status === 200) return;
                problems.push(`${target.address}: HTTP ${r.status} ${r.body.trim()}`);
            } catch (err) {
                problems.push((err as Error).message);
            }
        }
        throw new Error(`KvWorkload: could not clear ${KV_PREFIX}: ${problems.join("; ")}`);
    }

    private now(): number {
        return Number(process.hrtime.bigint() - this.origin);
    }

    private note(message: string): void {
        if (this.errors.length < 20) this.errors.push(message);
    }

    private async loop(client: number, deadline: number): Promise<void> {
        let seq = 0;
        while (!this.stopping && Date.now() < deadline && this.issued < this.maxOps) {
            this.issued++;
            const key = `${KV_PREFIX}k${Math.floor(Math.random() * this.keys)}`;
            const address = this.targets[Math.floor(Math.random() * this.targets.length)].address;
            const dice = Math.random();
            if (dice < 0.4) {
                await this.write(client, address, key, `c${client}-${seq++}`);
            } else if (dice < 0.7) {
                await this.cas(client, address, key, `c${client}-${seq++}`);
            } else {
                await this.read(client, address, key);
            }
        }
        this.stoppedAt ??= Date.now();
    }

    /** A ?consistent read, recorded; undefined when it failed (then it is left out: it had no effect). */
    private async read(
        client: number,
        address: string,
        key: string,
    ): Promise<{ value: string; index: number } | undefined> {
        const invokeNs = this.now();
        let r: Reply;
        try {
            r = await this.request(address, "GET", `${key}?consistent`);
        } catch (err) {
            this.stats.unknownReads++;
            this.note(`client ${client}: ${(err as Error).message}`);
            return undefined;
        }
        const returnNs = this.now();
        let found = { value: "", index: 0 }; // 404: absent (a CAS then passes ?cas=0)
        if (r.status === 200) {
            const entries = JSON.parse(r.body) as { Value: string | null; ModifyIndex: number }[];
            if (entries.length > 0) {
                const value = entries[0].Value === null ? "" : Buffer.from(entries[0].Value, "base64").toString();
                found = { value, index: entries[0].ModifyIndex };
            }
        } else if (r.status !== 404) {
            if (r.status >= 500) this.stats.unknownReads++;
            else this.stats.failed++;
            this.note(`client ${client}: GET ${address} ${key}: HTTP ${r.status} ${r.body.trim()}`);
            return undefined;
        }
        this.ops.push({ client, key, op: "read", result: found.value, unknown: false, invokeNs, returnNs });
        this.stats.ok++;
        this.stats.reads++;
        return found;
    }

    /** A read (recorded as such), then a PUT ?cas=<the ModifyIndex read>, expecting the value read. */
    private async cas(client: number, address: string, key: string, value: string): Promise<void> {
        const seen = await this.read(client, address, key);
        if (!seen || this.stopping) return;
        await this.write(client, address, key, value, { index: seen.index, expected: seen.value });
    }

    /**
     * A PUT, or with `cas` a PUT ?cas=<index>. Consul's answer is recorded; an indeterminate outcome
     * (network error, timeout, 5xx) is recorded as unknown; a definite failure (4xx, a plain PUT
     * answered false) had no effect and is only counted.
     */
    private async write(
        client: number,
        address: string,
        key: string,
        value: string,
        cas?: { index: number; expected: string },
    ): Promise<void> {
        const pathAndQuery = cas ? `${key}?cas=${cas.index}` : key;
        const base = cas
            ? { client, key, op: "cas" as const, value, expected: cas.expected }
            : { client, key, op: "put" as const, value };
        const invokeNs = this.now();
        let r: Reply | undefined;
        let problem = "";
        try {
            r = await this.request(address, "PUT", pathAndQuery, value);
            if (r.status >= 500) problem = `PUT ${address} ${pathAndQuery}: HTTP ${r.status} ${r.body.trim()}`;
        } catch (err) {
            problem = (err as Error).message;
        }
        const returnNs = this.now();
        if (!r || problem !== "") {
            this.note(`client ${client}: ${problem}`);
            this.ops.push({ ...base, unknown: true, invokeNs, returnNs });
            this.stats.unknownWrites++;
            return;
        }
        const answer = r.body.trim();
        if (r.status !== 200 || (answer !== "true" && answer !== "false") || (!cas && answer !== "true")) {
            this.note(`client ${client}: PUT ${address} ${pathAndQuery}: HTTP ${r.status} '${answer}'`);
            this.stats.failed++;
            return;
        }
        const ok = answer === "true";
        this.ops.push({ ...base, ok, unknown: false, invokeNs, returnNs });
        this.stats.ok++;
        if (!cas) this.stats.puts++;
        else if (ok) this.stats.casTrue++;
        else this.stats.casFalse++;
    }

    /** One HTTPS request to a server's KV API, verified with our CA, bounded by timeoutMs in all. */
    private request(address: string, method: string, pathAndQuery: string, body?: string): Promise<Reply> {
        const what = `${method} https://${address}:8501/v1/kv/${pathAndQuery}`;
        return new Promise<Reply>((resolve, reject) => {
            const req = https.request(
                {
                    host: address,
                    port: 8501,
                    path: `/v1/kv/${pathAndQuery}`,
                    method,
                    ca: this.opts.ca,
                    headers: { "X-Consul-Token": this.opts.token },
                    agent: false,
                },
                (res) => {
                    const chunks: Buffer[] = [];
                    res.on("data", (d: Buffer) => chunks.push(d));
                    res.on("end", () =>
                        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
                    );
                    res.on("error", (err) => reject(new Error(`${what}: ${err.message}`)));
                    res.on("aborted", () => reject(new Error(`${what}: response aborted`)));
                },
            );
            const timer = setTimeout(
                () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)),
                this.timeoutMs,
            );
            req.on("close", () => clearTimeout(timer));
            req.on("error", (err) => reject(new Error(`${what}: ${err.message}`)));
            req.end(body);
        });
    }
}
