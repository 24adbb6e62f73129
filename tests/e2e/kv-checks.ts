// What every operator-change scenario must keep: the data (1,000 keys written before, all read back
// with ?consistent from every server after), one leader that every server agrees on, no leaderless
// gap over 2 s, and, while the change runs, a KV history that is linearizable (./linearizability.ts).

import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { api, LeaderWatch, leaderOf, log, waitFor } from "./infra";
import { buildChecker, checkHistory, CheckResult, KvWorkload } from "./linearizability";

export interface KvAccess {
    readonly ca: string;
    readonly token: string;
}

/** Writes 1,000 keys under `prefix` (transactions of 64, the txn API's limit) through `address`. */
export async function writeBulk(address: string, access: KvAccess, prefix: string): Promise<void> {
    const keys = Array.from({ length: 1000 }, (_, i) => `${prefix}/${String(i).padStart(4, "0")}`);
    for (let start = 0; start < keys.length; start += 64) {
        const ops = keys.slice(start, start + 64).map((Key) => ({
            KV: { Verb: "set", Key, Value: Buffer.from(`v-${Key}`).toString("base64") },
        }));
        const r = await api(address, "/v1/txn", {
            ...access,
            method: "PUT",
            body: JSON.stringify(ops),
            timeoutMs: 10_000,
        });
        assert.strictEqual(r.status, 200, `writing ${prefix}: ${r.body}`);
    }
}

/** How many of the 1,000 keys under `prefix` a server returns, with their values, in a ?consistent read. */
export async function countBulk(address: string, access: KvAccess, prefix: string): Promise<number> {
    const r = await api(address, `/v1/kv/${prefix}/?recurse&consistent`, { ...access, timeoutMs: 10_000 });
    if (r.status === 404) return 0;
    assert.strictEqual(r.status, 200, `reading ${prefix} from ${address}: ${r.body}`);
    const entries = JSON.parse(r.body) as { Key: string; Value: string }[];
    return entries.filter((e) => Buffer.from(e.Value, "base64").toString() === `v-${e.Key}`).length;
}

/** Keys lost under every prefix, as the worst server sees it; fails unless every server has them all. */
export async function assertNoKeyLost(
    servers: readonly string[],
    access: KvAccess,
    prefixes: readonly string[],
): Promise<number> {
    let lost = 0;
    for (const prefix of prefixes) {
        for (const address of servers) {
            const n = await countBulk(address, access, prefix);
            lost = Math.max(lost, 1000 - n);
            assert.strictEqual(n, 1000, `${address} returns ${n} of the 1,000 keys under ${prefix}`);
        }
    }
    return lost;
}

/** Every server reports the same, non-empty leader (polled until they agree, bounded). */
export async function assertOneLeader(servers: readonly string[], ca: string): Promise<string> {
    let seen: string[] = [];
    await waitFor(
        `one leader that all of ${servers.join(", ")} agree on`,
        async () => {
            seen = await Promise.all(servers.map((a) => leaderOf(a, ca)));
            return seen[0] !== "" && seen.every((l) => l === seen[0]);
        },
        30_000,
        200,
    );
    return seen[0];
}

/** The checks around one scenario: a leader watch and a KV workload while it runs. */
export class ScenarioWatch {
    /** Watches started and not stopped yet: a scenario that failed midway leaves one running. */
    private static running = new Set<ScenarioWatch>();

    /**
     * Stops, without checking, any watch a failed scenario left running (call in afterEach), so its
     * workload does not write on into the next scenario's keys and history.
     */
    static async abandonAll(): Promise<number> {
        const left = [...ScenarioWatch.running];
        ScenarioWatch.running.clear();
        for (const w of left) {
            await w.leaderWatch.stop();
            await w.workload.stop();
        }
        return left.length;
    }

    private constructor(
        private readonly leaderWatch: LeaderWatch,
        private readonly workload: KvWorkload,
        private readonly outDir: string,
    ) {}

    /** `watched` are polled for a leader; `targets` take the workload (servers that stay up). */
    static async start(
        watched: readonly string[],
        targets: readonly string[],
        access: KvAccess,
        name: string,
    ): Promise<ScenarioWatch> {
        const workload = new KvWorkload(
            targets.map((address) => ({ address })),
            { ...access, clients: 3, keys: 20, timeoutMs: 2000 },
        );
        await workload.start();
        const outDir = path.join(process.env.E2E_OUTPUT_DIR ?? path.join(os.tmpdir(), "consul-e2e-output"), name);
        fs.mkdirSync(outDir, { recursive: true });
        const watch = new ScenarioWatch(new LeaderWatch(watched, access.ca, 100), workload, outDir);
        ScenarioWatch.running.add(watch);
        return watch;
    }

    /** Stops both; checks the history. Fails on a non-linearizable history or a gap over 2 s. */
    async stop(): Promise<{ gapMs: number; check: CheckResult; opsPerSecond: number }> {
        ScenarioWatch.running.delete(this);
        await this.leaderWatch.stop();
        const history = await this.workload.stop();
        const check = checkHistory(history, this.outDir, buildChecker());
        const gapMs = this.leaderWatch.longestGapMs;
        log(
            `workload: ${this.workload.stats.ok} ops answered (${this.workload.opsPerSecond.toFixed(0)}/s), ` +
                `${this.workload.stats.unknownWrites} writes of unknown outcome; first errors: ${this.workload.errors.slice(0, 3).join(" | ")}`,
        );
        assert.ok(
            check.linearizable,
            `the KV history is not linearizable for ${check.badKeys.join(", ")}; see ${check.htmlFiles.join(", ")}`,
        );
        assert.ok(check.ops > 0, "the workload recorded no operation");
        assert.ok(gapMs <= 2000, `leaderless for ${gapMs} ms (per 100 ms poll: ${this.leaderWatch.longestGapDetail})`);
        return { gapMs, check, opsPerSecond: this.workload.opsPerSecond };
    }
}

/** For afterEach(): ScenarioWatch.abandonAll(), and a line saying how many workloads it stopped. */
export async function abandonLeftoverWatches(): Promise<void> {
    const left = await ScenarioWatch.abandonAll();
    if (left > 0) log(`stopped ${left} KV workload(s) left running by a failed scenario`);
}
