// Snapshot backups on real hosts (3 servers, deployed by the program's own commands under replay,
// ./replay.ts): every server's timer runs but only the leader saves; the snapshot passes `consul
// snapshot inspect` and lands in an S3-compatible bucket (moto's server, ./s3.ts); retention keeps
// the newest N there and on the leader. Then the restore runbook (docs/runbooks/restore-snapshot.md),
// its marked commands run as written: 1,000 keys and an ACL token, a snapshot, every server's data
// dir destroyed, step 1 on every server, step 2 on one; all keys back and the token working.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { mainPid, vmStackConfig } from "./checks";
import { api, Artifacts, ensureArtifacts, Figures, Hosts, log, Mirror, requirePrerequisites, sleep } from "./infra";
import { assertNoKeyLost, assertOneLeader, countBulk, KvAccess, writeBulk } from "./kv-checks";
import { assertNoFailures, Deployed, deployReplay, ReplayMocks } from "./replay";
import { S3_CREDENTIALS, S3Server } from "./s3";
import { REPO_ROOT } from "../mocks";

const SERVERS = [1, 2, 3];
const BUCKET = "consul-e2e-snapshots";
const RETAIN = 2;
const RUNBOOK = path.join(REPO_ROOT, "docs", "runbooks", "restore-snapshot.md");
/** What the leader's run logs (components/vm/scripts/snapshot.sh). */
const SAVED =
    / save: (consul-\d{8}T\d{6}Z\.snap): (\d+) bytes, Raft index (\d+), saved in (\d+) ms, uploaded in (\d+) ms to /;
const RESTORED =
    / restore: (consul-\S+\.snap): (\d+) bytes, Raft index (\d+), fetched in (\d+) ms, restored in (\d+) ms/;

const figures = new Figures();

/** The commands of a marked block of the runbook (`<!-- restore-runbook:<name> -->` then a sh fence). */
function runbookBlock(markdown: string, name: string): string[] {
    const at = markdown.indexOf(`<!-- restore-runbook:${name} -->`);
    assert.ok(at >= 0, `the runbook has no block ${name}`);
    const fence = /```sh\n([\s\S]*?)```/.exec(markdown.slice(at));
    assert.ok(fence, `the runbook's block ${name} has no sh code`);
    return fence[1]
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#"));
}

describe("Snapshots on real hosts: the leader saves to the bucket, retention, and the restore runbook", function () {
    this.timeout(30 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror | undefined;
    let s3: S3Server | undefined;
    let state: ReplayMocks | undefined;
    let access: KvAccess = { ca: "", token: "" };
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "consul-snapshot-e2e-"));

    const addr = (i: number) => hosts.hosts[i - 1].address;
    const serverAddrs = () => SERVERS.map(addr);
    const objects = () => (s3 as S3Server).list(BUCKET, "dc1/");

    function stackConfig(snapshots = true): Record<string, string> {
        const release = { mirrorUrl: mirror?.url ?? "", consulVersion: artifacts.consulVersion };
        if (!snapshots) return vmStackConfig(hosts, { servers: SERVERS, clients: [] }, release);
        return vmStackConfig(hosts, { servers: SERVERS, clients: [] }, release, {
            snapshotInterval: "1h",
            snapshotRetain: String(RETAIN),
            snapshotS3Endpoint: s3?.url ?? "",
            snapshotS3AllowHttp: "true",
            snapshotS3Bucket: BUCKET,
            snapshotS3AccessKeyId: S3_CREDENTIALS.accessKeyId,
            snapshotS3SecretAccessKey: S3_CREDENTIALS.secretAccessKey,
        });
    }

    async function deploy(snapshots = true): Promise<Deployed> {
        const d = await deployReplay(state, stackConfig(snapshots), { secretKeys: ["snapshotS3SecretAccessKey"] });
        state = d.mocks;
        log(
            `deploy: ${d.mocks.runs.map((r) => `${r.op}@${r.host}`).join(" ") || "none"}; ${d.failures.length} failure(s)`,
        );
        return d;
    }

    /** The host number of the Raft leader. */
    async function leaderHost(): Promise<number> {
        const leader = await assertOneLeader(serverAddrs(), access.ca);
        const i = SERVERS.find((s) => leader.startsWith(`${addr(s)}:`));
        assert.ok(i, `leader ${leader} is none of the servers`);
        return i;
    }

    /**
     * Runs the snapshot service once on host i (as its timer would) and returns that run's log: the
     * unit's journal after the cursor taken before the run. (Not by invocation ID: journald tags a
     * line with it only if it still knows the unit's run when it reads the line, and a oneshot may
     * be gone by then.) journald takes the last line a moment after systemctl start returns.
     */
    async function snapshotRun(i: number): Promise<string> {
        const journal = "journalctl -u consul-snapshot.service -o cat";
        const cursor = (await hosts.run(i, `${journal} -n 1 --show-cursor | sed -n 's/^-- cursor: //p'`)).trim();
        const r = await hosts.exec(i, "systemctl start consul-snapshot.service", { timeoutMs: 5 * 60_000 });
        let out = "";
        for (let tries = 0; tries < 50; tries++) {
            out = await hosts.run(i, cursor ? `${journal} --after-cursor='${cursor}'` : journal);
            if (/ (save|leader): | FAILED: /.test(out)) break;
            await sleep(200);
        }
        assert.strictEqual(r.code, 0, `consul-snapshot.service failed on host ${i}: ${r.stderr}\n${out}`);
        return out;
    }

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        hosts = await Hosts.up(SERVERS.length);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        s3 = await S3Server.start(hosts.bridgeAddr);
        s3.createBucket(BUCKET);
    });

    after(async function () {
        s3?.stop();
        mirror?.stop();
        if (hosts) await hosts.down();
        fs.rmSync(tmp, { recursive: true, force: true });
        figures.print();
    });

    it("a. deploy with snapshots on: the timer runs on every server, its secrets root-only, the snapshot token made", async () => {
        const d = await deploy();
        assertNoFailures(d.failures);
        access = { ca: String(d.outputs.caCertPem), token: String(d.outputs.aclManagementToken) };
        const acl = d.mocks.runs.filter((r) => r.name.endsWith("-snapshot-acl"));
        assert.strictEqual(acl.length, 1, "one snapshot ACL step");
        assert.match(acl[0].stdout, /policy consul-snapshots created\n.*snapshot token created/);
        for (const i of SERVERS) {
            assert.strictEqual((await hosts.run(i, "systemctl is-active consul-snapshot.timer")).trim(), "active");
            assert.strictEqual((await hosts.run(i, "systemctl is-enabled consul-snapshot.timer")).trim(), "enabled");
            const modes = await hosts.run(
                i,
                "stat -c '%n %a %U:%G' /etc/consul.d/tokens/snapshot /etc/consul.d/tokens/snapshot-rclone.conf /usr/local/bin/consul-snapshot",
            );
            assert.deepStrictEqual(modes.trim().split("\n"), [
                "/etc/consul.d/tokens/snapshot 600 root:root",
                "/etc/consul.d/tokens/snapshot-rclone.conf 600 root:root",
                "/usr/local/bin/consul-snapshot 700 root:root",
            ]);
            // The bucket's secret key is in the root-only rclone config and nowhere the consul user reads.
            const readable = await hosts.exec(
                i,
                `runuser -u consul -- grep -rlF '${S3_CREDENTIALS.secretAccessKey}' /etc /usr/local/bin /var/lib 2>/dev/null`,
            );
            assert.strictEqual(readable.stdout.trim(), "", `the consul user can read the S3 secret on host ${i}`);
        }
        for (const run of d.mocks.runs) {
            assert.ok(!run.stdout.includes(S3_CREDENTIALS.secretAccessKey), `${run.name} printed the S3 secret`);
        }
    });

    it("b. every server's run: only the leader saves; the object is in the bucket and passes consul snapshot inspect", async () => {
        const leader = await leaderHost();
        const logs = new Map<number, string>();
        for (const i of SERVERS) logs.set(i, await snapshotRun(i));
        for (const i of SERVERS.filter((s) => s !== leader)) {
            assert.match(logs.get(i) as string, /not the Raft leader, nothing to do/, `host ${i}`);
            assert.strictEqual((await hosts.run(i, "ls -A /var/lib/consul-snapshots")).trim(), "", `host ${i} saved`);
        }
        const saved = SAVED.exec(logs.get(leader) as string);
        assert.ok(saved, `the leader's run: ${logs.get(leader)}`);
        const [, name, size, index, saveMs, uploadMs] = saved;
        assert.deepStrictEqual(objects(), [{ key: `dc1/${name}`, size: Number(size) }]);
        assert.strictEqual((await hosts.run(leader, "stat -c '%a' /var/lib/consul-snapshots")).trim(), "700");
        // What is in the bucket, fetched by the test, is a snapshot Consul's own inspect accepts.
        const file = path.join(tmp, name);
        (s3 as S3Server).download(BUCKET, `dc1/${name}`, file);
        const inspect = spawnSync(artifacts.consulBinary, ["snapshot", "inspect", file], { encoding: "utf8" });
        assert.strictEqual(inspect.status, 0, inspect.stderr);
        assert.match(inspect.stdout, new RegExp(`Index\\s+${index}\\b`));
        figures.add(
            `snapshot of a fresh cluster: ${size} bytes (Raft index ${index}), save ${saveMs} ms, upload ${uploadMs} ms`,
        );
    });

    it(`c. retention: ${RETAIN} kept, in the bucket and on the leader, the newest`, async () => {
        const leader = await leaderHost();
        const names: string[] = objects().map((o) => o.key.replace(/^dc1\//, ""));
        for (let run = 0; run < 3; run++) {
            const out = await snapshotRun(leader);
            const saved = SAVED.exec(out);
            assert.ok(saved, `the leader's run ${run + 1}: ${out}`);
            names.push(saved[1]);
        }
        const newest = [...new Set(names)].sort().slice(-RETAIN);
        assert.strictEqual(new Set(names).size, 4, `four distinct snapshots: ${names.join(" ")}`);
        assert.deepStrictEqual(
            objects().map((o) => o.key),
            newest.map((n) => `dc1/${n}`),
        );
        const local = (await hosts.run(leader, "ls /var/lib/consul-snapshots")).trim().split("\n");
        assert.deepStrictEqual(local, newest);
    });

    /**
     * One runbook command, as written. systemd 252 in these nspawn hosts (cgroup v1) can refuse a
     * start that follows a stop within a second with 219/CGROUP (systemd/systemd#32460); the unit's
     * Restart=on-failure starts the agent 5 s later, as it would for an operator, so that one
     * refusal waits for it. Any other failure fails the test.
     */
    async function runbookStep(i: number, command: string): Promise<string> {
        try {
            return await hosts.run(i, command, { timeoutMs: 5 * 60_000 });
        } catch (e) {
            const refused = /systemctl (?:re)?start consul\b/.test(command) && /status=219\/CGROUP/.test(String(e));
            if (!refused) throw e;
            log(
                `host ${i}: '${command}' refused with 219/CGROUP (systemd/systemd#32460); waiting for Restart=on-failure`,
            );
            await hosts.run(
                i,
                "for n in $(seq 120); do systemctl is-active --quiet consul && exit 0; sleep 1; done; exit 1",
                {
                    timeoutMs: 3 * 60_000,
                },
            );
            return "";
        }
    }

    it("d. the restore runbook: 1,000 keys and a token, snapshot, every data dir destroyed, runbook steps, all back", async () => {
        const runbook = fs.readFileSync(RUNBOOK, "utf8");
        const everyServer = runbookBlock(runbook, "every-server");
        const oneServer = runbookBlock(runbook, "one-server");
        // 1. 1,000 keys, and a token of an application (read e2e/) created before the snapshot.
        await writeBulk(addr(1), access, "e2e/restore");
        const policy = await api(addr(1), "/v1/acl/policy", {
            ...access,
            method: "PUT",
            body: JSON.stringify({
                Name: "e2e-app",
                Rules: JSON.stringify({ key_prefix: { "e2e/": { policy: "read" } } }),
            }),
        });
        assert.strictEqual(policy.status, 200, policy.body);
        const created = await api(addr(1), "/v1/acl/token", {
            ...access,
            method: "PUT",
            body: JSON.stringify({ Description: "e2e app", Policies: [{ Name: "e2e-app" }] }),
        });
        assert.strictEqual(created.status, 200, created.body);
        const appToken = (JSON.parse(created.body) as { SecretID: string }).SecretID;
        const appRead = async (i: number) =>
            (await api(addr(i), "/v1/kv/e2e/restore/0042", { ca: access.ca, token: appToken })).status;
        assert.strictEqual(await appRead(1), 200);
        // 2. The snapshot (the timer's run on the leader), then a key it does not hold.
        const leader = await leaderHost();
        const run = await snapshotRun(leader);
        const saved = SAVED.exec(run);
        assert.ok(saved, `the leader's run: ${run}`);
        const after = await api(addr(1), "/v1/kv/e2e/after-snapshot", { ...access, method: "PUT", body: "x" });
        assert.strictEqual(after.status, 200, after.body);
        // 3. Disaster: every server stopped and its data dir destroyed.
        await Promise.all(SERVERS.map((i) => hosts.run(i, "systemctl stop consul && rm -rf /var/lib/consul")));
        // 4. The runbook, as written: step 1 on every server (together: they elect a leader), step 2 on one.
        await Promise.all(
            SERVERS.map(async (i) => {
                for (const command of everyServer) await runbookStep(i, command);
            }),
        );
        await assertOneLeader(serverAddrs(), access.ca);
        // A new, empty cluster: the stack's management token is not known to it yet.
        const fresh = await api(addr(1), "/v1/acl/token/self", access);
        assert.notStrictEqual(fresh.status, 200, `before the restore, the management token works: ${fresh.body}`);
        const started = Date.now();
        let output = "";
        for (const command of oneServer) output += await runbookStep(2, command);
        const restoreWallMs = Date.now() - started;
        log(`runbook step 2 on host 2:\n${output}`);
        const restored = RESTORED.exec(output);
        assert.ok(restored, `the restore's line: ${output}`);
        assert.strictEqual(restored[1], saved[1], "restored the newest snapshot");
        // 5. Every key back on every server, the application's token works, the later key is gone.
        await assertOneLeader(serverAddrs(), access.ca);
        const lost = await assertNoKeyLost(serverAddrs(), access, ["e2e/restore"]);
        for (const i of SERVERS) assert.strictEqual(await appRead(i), 200, `the app token on host ${i}`);
        const later = await api(addr(1), "/v1/kv/e2e/after-snapshot", access);
        assert.strictEqual(later.status, 404, "a key written after the snapshot is back");
        assert.strictEqual(await countBulk(addr(3), { ca: access.ca, token: appToken }, "e2e/restore"), 1000);
        // The snapshots go on: the snapshot token came back with the restored ACL state.
        const nextRun = await snapshotRun(await leaderHost());
        assert.ok(SAVED.exec(nextRun), `a snapshot after the restore: ${nextRun}`);
        figures.add(
            `restore runbook: ${restored[2]} bytes (1,000 keys), save ${saved[4]} ms, fetch ${restored[4]} ms, restore ${restored[5]} ms (step 2 in all ${restoreWallMs} ms); keys lost ${lost}`,
        );
    });

    it("e. snapshots off: the timer and its files go from every server, the agents keep running, local snapshots stay", async () => {
        const pids = await Promise.all(SERVERS.map((i) => mainPid(hosts, i)));
        const d = await deploy(false);
        assertNoFailures(d.failures);
        // One session per server (the snapshot ACL step has no delete command: its policy and
        // token stay in Consul, see the runbook).
        assert.deepStrictEqual(
            d.mocks.runs.map((r) => `${r.op} ${r.name}`),
            SERVERS.map((i) => `update consul-vm-server-${hosts.hosts[i - 1].name}-agent`),
        );
        for (const i of SERVERS) {
            const left = await hosts.exec(
                i,
                "ls /etc/systemd/system/consul-snapshot.* /usr/local/bin/consul-snapshot /etc/consul.d/tokens/snapshot* 2>/dev/null; systemctl is-active consul-snapshot.timer",
            );
            assert.strictEqual(left.stdout.trim(), "inactive", `host ${i}: ${left.stdout}`);
        }
        assert.deepStrictEqual(await Promise.all(SERVERS.map((i) => mainPid(hosts, i))), pids, "an agent restarted");
        assert.ok((await hosts.run(await leaderHost(), "ls /var/lib/consul-snapshots")).trim() !== "");
    });
});
