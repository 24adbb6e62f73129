// End-to-end with the real Pulumi engine: `pulumi up`, a no-change `pulumi up`, a rolling change, a
// change the hosts refuse and `pulumi destroy` of the VM topology, with the engine's output and event
// logs searched for secrets, run by the CLI that scripts/engine/build.sh builds from
// Go modules, with the project's command provider (SSH) and the bridged tls/random providers,
// against systemd-nspawn hosts. Each update is also run through the replay model (the provider's
// diff rules over the mocks' registrations, ../command-diff.ts), and any difference between what the
// engine did and what the replay would do fails the test. Run with `npm run test:engine` as root.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { COMMAND_TYPE, CommandOp, diffCommands } from "../command-diff";
import { ConsulMocks, evaluateProgram, REPO_ROOT, stackFileConfig } from "../mocks";
import {
    assertHandOvers,
    assertRestartedOneAtATime,
    assertSecureCluster,
    ClusterAccess,
    electionsStartedByTimeout,
    mainPid,
    members,
    startedAt,
    vmStackConfig,
} from "../e2e/checks";
import {
    api,
    Artifacts,
    ensureArtifacts,
    Hosts,
    leaderOf,
    LeaderWatch,
    log,
    Mirror,
    requirePrerequisites,
    waitFor,
} from "../e2e/infra";
import { assertNoKeyLost, KvAccess, ScenarioWatch, writeBulk } from "../e2e/kv-checks";
import { brokenRelease, BROKEN_VERSION } from "../e2e/releases";
import { MemberWatch } from "../e2e/member-watch";
import { nameOf, PulumiProject, Step, Update } from "./pulumi-cli";
import { gossipKeyFromSeed, tokenFromSeed } from "../../components/security/secret-seeds";
import { TYPES } from "../../policy/rules";

const SERVERS = [1, 2, 3];
const CLIENTS = [4, 5];
/** Hosts 6 and 7 are servers only while scenario 3f scales 3 → 5. */
const EXTRA_SERVERS = [6, 7];
const STACK = "e2e";

/** What a clean host looks like: its file tree (outside runtime and log dirs) and accounts. */
const SNAPSHOT =
    "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp " +
    "-o -path /var/log -o -path /var/cache -o -path /var/lib/systemd -o -path /var/lib/private \\) -prune -o -print " +
    "| LC_ALL=C sort; getent passwd; getent group";

const figures: string[] = [];
function figure(line: string): void {
    figures.push(line);
    log(`FIGURE ${line}`);
}

/** The engine's steps on the command resources, as the replay model's ops. */
function commandOps(update: Update): Map<string, CommandOp> {
    const ops = new Map<string, CommandOp>();
    for (const s of update.steps.filter((x) => x.type === COMMAND_TYPE)) {
        const op: CommandOp | undefined =
            s.op === "same"
                ? "none"
                : s.op === "create" || s.op === "update" || s.op === "delete"
                  ? s.op
                  : s.op === "replace" || s.op === "create-replacement" || s.op === "delete-replaced"
                    ? "replace"
                    : undefined;
        if (op) ops.set(nameOf(s.urn), op);
    }
    return ops;
}

describe("Consul on real hosts, deployed by the real Pulumi engine", function () {
    this.timeout(90 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror;
    let project: PulumiProject;
    let model: ConsulMocks | undefined;
    let access: ClusterAccess;
    let gossipKey = "";
    let config: Record<string, string>;
    const cleanSnapshots: string[] = [];

    const addr = (i: number) => hosts.hosts[i - 1].address;
    const stackHosts = [...SERVERS, ...CLIENTS];

    function stackConfig(
        overrides: Record<string, string> = {},
        servers: readonly number[] = SERVERS,
        consulVersion = artifacts.consulVersion,
    ): Record<string, string> {
        const release = { mirrorUrl: mirror.url, consulVersion };
        return vmStackConfig(hosts, { servers, clients: CLIENTS }, release, overrides);
    }

    /** SSH logins each stack host's sshd has accepted so far (the reading itself is one). */
    async function sshLogins(): Promise<number[]> {
        return Promise.all(
            stackHosts.map(async (i) => {
                const out = await hosts.run(
                    i,
                    "journalctl -u ssh.service -o cat --no-pager | grep -c 'Accepted publickey' || true",
                );
                return parseInt(out.trim(), 10);
            }),
        );
    }

    /** The engine's SSH sessions per host during an update, counted by the hosts' sshd. */
    async function sessionsDuring(run: () => Promise<Update>): Promise<{ update: Update; sessions: number[] }> {
        const before = await sshLogins();
        const update = await run();
        const after = await sshLogins();
        // Each reading is one login, so `after` includes the reading that took it.
        return { update, sessions: after.map((n, k) => n - before[k] - 1) };
    }

    /**
     * What the replay model does for the same update: evaluate the program under the mocks chained to
     * the previous evaluation, then apply the command provider's diff rules.
     */
    async function replayModel(cfg: Record<string, string> | "destroy"): Promise<Map<string, CommandOp>> {
        const before = model?.resources ?? [];
        let after: ConsulMocks | undefined;
        if (cfg !== "destroy") {
            after = new ConsulMocks(model);
            await evaluateProgram(cfg, { stack: STACK, mocks: after });
        }
        model = after;
        return new Map(diffCommands(before, after?.resources ?? []).map((r) => [r.name, r.op]));
    }

    /** Differences between the engine's steps and the replay model's, one line each. */
    function differences(engine: Map<string, CommandOp>, replay: Map<string, CommandOp>): string[] {
        const lines: string[] = [];
        for (const name of new Set([...engine.keys(), ...replay.keys()])) {
            const [e, r] = [engine.get(name) ?? "absent", replay.get(name) ?? "absent"];
            if (e !== r) lines.push(`${name}: engine ${e}, replay ${r}`);
        }
        return lines;
    }

    function summary(update: Update): string {
        return Object.entries(update.changes)
            .map(([op, n]) => `${op} ${n}`)
            .join(", ");
    }

    function sessionsText(sessions: number[]): string {
        return stackHosts.map((i, k) => `${hosts.hosts[i - 1].name}=${sessions[k]}`).join(" ");
    }

    /** Every update's text output and event log, to search for secrets at the end. */
    const logs: { what: string; text: string }[] = [];
    const debugLines: string[] = [];

    function assertSucceeded(update: Update, what: string): void {
        // The diagnostics come before the (long) outputs: keep every error line, then the tail.
        const errors = update.output.split("\n").filter((l) => /error/i.test(l));
        assert.strictEqual(update.code, 0, `${what} failed:\n${errors.join("\n")}\n...\n${update.output.slice(-3000)}`);
    }

    async function recorded(run: () => Promise<Update>): Promise<{ update: Update; sessions: number[] }> {
        const result = await sessionsDuring(run);
        const n = logs.length / 2 + 1;
        // The SDK's debug-level messages are kept apart: see scenario 4.
        const isDebug = (line: string) =>
            line.trim() !== "" &&
            (JSON.parse(line) as { diagnosticEvent?: { severity: string } }).diagnosticEvent?.severity === "debug";
        const lines = result.update.eventLog.split("\n");
        logs.push({ what: `update ${n}'s output`, text: result.update.output });
        logs.push({ what: `update ${n}'s event log`, text: lines.filter((l) => !isDebug(l)).join("\n") });
        debugLines.push(...lines.filter(isDebug));
        return result;
    }

    /** The servers' steps in the engine's order: each must start after the previous one ended. */
    function assertOneServerAtATime(update: Update): Step[] {
        const serverSteps = update.steps
            .filter((s) => s.type === COMMAND_TYPE && /-server-/.test(nameOf(s.urn)) && s.op !== "same")
            .sort((a, b) => a.startSeq - b.startSeq);
        for (let k = 1; k < serverSteps.length; k++) {
            assert.ok(
                serverSteps[k].startSeq > serverSteps[k - 1].endSeq,
                `${nameOf(serverSteps[k].urn)} started before ${nameOf(serverSteps[k - 1].urn)} finished`,
            );
        }
        return serverSteps;
    }

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        const t0 = Date.now();
        hosts = await Hosts.up(stackHosts.length + EXTRA_SERVERS.length);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        mirror.addRelease(BROKEN_VERSION, brokenRelease());
        figure(
            `${stackHosts.length} hosts up and the release mirror at ${mirror.url}: ${((Date.now() - t0) / 1000).toFixed(1)} s`,
        );
        for (const i of [...stackHosts, ...EXTRA_SERVERS]) cleanSnapshots.push(await hosts.run(i, SNAPSHOT));
        config = stackConfig();
        const t1 = Date.now();
        project = await PulumiProject.create(STACK, config);
        figure(
            `engine (scripts/engine/build.sh, cached or not) and stack set-up: ${((Date.now() - t1) / 1000).toFixed(1)} s`,
        );
    });

    afterEach(async function () {
        const left = await ScenarioWatch.abandonAll();
        if (left > 0) log(`stopped ${left} KV workload(s) left running by a failed scenario`);
    });

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        project?.dispose();
        log("figures:\n  " + figures.join("\n  "));
    });

    it("0. Pulumi.prod.yaml previews with no SSH key file, as a pull request's check does; pulumi up refuses without it", async () => {
        const prod = await PulumiProject.create("prod", stackFileConfig("prod").config);
        try {
            const preview = await prod.run(["preview", "--stack", "prod"]);
            assert.strictEqual(preview.code, 0, preview.output.slice(-4000));
            assert.match(preview.output, /no such file here\. This preview goes on without it/);
            assert.match(preview.output, /\+ +command:remote:Command +consul-vm-server-consul-server-1-agent +create/);
            const up = await prod.run(["up", "--stack", "prod", "--yes", "--skip-preview"]);
            assert.notStrictEqual(up.code, 0, "pulumi up went on without the SSH key");
            assert.match(up.output, /consul:sshPrivateKeyPath = "~\/\.ssh\/consul_ed25519": no such file/);
            assert.doesNotMatch(up.output, /\n\s+at \S+ \(/, "a stack trace instead of the message");
            figure(
                `0. prod preview without the SSH key: ${preview.output
                    .split("\n")
                    .find((l) => /no such file here/.test(l))
                    ?.trim()}`,
            );
        } finally {
            prod.dispose();
        }
    });

    it("1. pulumi up: a healthy, secure cluster, the same steps as the replay, no secret in plaintext", async () => {
        const { update, sessions } = await recorded(() => project.update("up"));
        assertSucceeded(update, "pulumi up");
        const outputs = await project.outputs();
        access = {
            hosts,
            servers: SERVERS,
            clients: CLIENTS,
            ca: String(outputs.caCertPem),
            token: String(outputs.aclManagementToken),
        };
        gossipKey = String(outputs.gossipKey);
        await assertSecureCluster(access, gossipKey);

        const commands = update.steps.filter((s) => s.type === COMMAND_TYPE);
        const custom = update.steps.filter((s) => !s.type.startsWith("pulumi:") && !s.type.startsWith("consul:"));
        figure(
            `1. pulumi up: ${(update.ms / 1000).toFixed(1)} s; ${update.steps.length} resources (${custom.length} custom, ` +
                `${commands.length} commands: ${(commands.length / stackHosts.length).toFixed(1)} per host); ` +
                `SSH sessions per host (counted by sshd): ${sessionsText(sessions)}`,
        );
        // Time from the last server agent start to the leader, as the servers' journals tell it.
        const lastStart = Math.max(...(await Promise.all(SERVERS.map((i) => startedAt(hosts, i)))));
        const elected = await Promise.all(
            SERVERS.map((i) =>
                hosts.run(
                    i,
                    "journalctl -u consul -o short-iso-precise --no-pager | grep -m1 -E 'New leader elected|cluster leadership acquired' | cut -d' ' -f1 || true",
                ),
            ),
        );
        const firstLeader = Math.min(...elected.map((t) => Date.parse(t.trim())).filter((t) => !Number.isNaN(t)));
        // No journal line (Infinity) or a leader before the last start (a restart we did not expect)
        // would make the figure meaningless: fail instead of printing it.
        assert.ok(Number.isFinite(firstLeader), `no server journal names a leader: ${JSON.stringify(elected)}`);
        assert.ok(
            firstLeader >= lastStart - 1000,
            `a leader ${lastStart - firstLeader} ms before the last server started`,
        );
        figure(
            `1. time from the last server agent start to a leader (server journals): ${((firstLeader - lastStart) / 1000).toFixed(2)} s`,
        );

        // The replay model does the same.
        const replay = await replayModel(config);
        assert.deepStrictEqual(differences(commandOps(update), replay), []);
        assert.ok([...replay.values()].every((op) => op === "create"));
        const serverSteps = assertOneServerAtATime(update);
        assert.strictEqual(serverSteps.length, SERVERS.length);
        // One session per host, and four more on the first server: the agents' and the metrics ACL
        // steps, and the two keyring steps.
        assert.deepStrictEqual(sessions, [5, 1, 1, 1, 1]);

        // The state keeps every secret encrypted: nothing the decrypted state marks secret is also
        // stored in plaintext.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "engine-state-"));
        try {
            fs.writeFileSync(path.join(dir, "dec.json"), await project.exportState(true));
            fs.writeFileSync(path.join(dir, "enc.json"), await project.exportState(false));
            const audit = spawnSync(
                "node",
                [
                    path.join(REPO_ROOT, "scripts", "engine", "audit-state.js"),
                    path.join(dir, "dec.json"),
                    path.join(dir, "enc.json"),
                ],
                { encoding: "utf8" },
            );
            figure(`1. state audit: ${(audit.stdout + audit.stderr).trim().split("\n").pop()}`);
            assert.strictEqual(audit.status, 0, audit.stdout + audit.stderr);
            const plain = fs.readFileSync(path.join(dir, "enc.json"), "utf8");
            for (const secret of [gossipKey, access.token])
                assert.ok(!plain.includes(secret), "a secret is in the encrypted state in plaintext");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("2. pulumi up again with no change: no step, no SSH session, no restart", async () => {
        const pids = await Promise.all(stackHosts.map((i) => mainPid(hosts, i)));
        const { update, sessions } = await recorded(() => project.update("up", ["--expect-no-changes"]));
        assertSucceeded(update, "the no-change pulumi up (--expect-no-changes)");
        figure(
            `2. no-change pulumi up: ${(update.ms / 1000).toFixed(1)} s; ${summary(update)}; SSH sessions: ${sessionsText(sessions)}`,
        );
        assert.deepStrictEqual(
            update.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${nameOf(s.urn)}`),
            [],
        );
        assert.deepStrictEqual(sessions, [0, 0, 0, 0, 0]);
        assert.deepStrictEqual(differences(commandOps(update), await replayModel(config)), []);
        assert.deepStrictEqual(await Promise.all(stackHosts.map((i) => mainPid(hosts, i))), pids);
    });

    it("3. a config change (logLevel) rolls the servers one at a time, the leader never restarted as leader", async () => {
        const pids = await Promise.all(SERVERS.map((i) => mainPid(hosts, i)));
        const leaderBefore = await leaderOf(addr(1), access.ca);
        config = stackConfig({ logLevel: "debug" });
        project.setConfig(config);
        const rolloutStart = Date.now();
        const watch = new LeaderWatch(SERVERS.map(addr), access.ca, 100);
        const { update, sessions } = await recorded(() => project.update("up"));
        await watch.stop();
        assertSucceeded(update, "pulumi up with logLevel=debug");
        const replay = await replayModel(config);
        assert.deepStrictEqual(differences(commandOps(update), replay), []);
        const serverSteps = assertOneServerAtATime(update);
        assert.deepStrictEqual(
            serverSteps.map((s) => s.op),
            SERVERS.map(() => "update"),
        );
        const after = await Promise.all(SERVERS.map((i) => mainPid(hosts, i)));
        SERVERS.forEach((_, k) => assert.notStrictEqual(after[k], pids[k], `server ${k + 1} was not restarted`));
        // The hosts' own clocks agree with the engine's order, and no server went down before the
        // previous one was back.
        const byEngine = serverSteps.map((s) => SERVERS.find((i) => nameOf(s.urn).includes(hosts.hosts[i - 1].name)));
        const byHosts = await assertRestartedOneAtATime(hosts, SERVERS);
        assert.deepStrictEqual(byHosts, byEngine);
        // Every agent was restarted by the time its step ended, not later.
        const clientPids = await Promise.all(CLIENTS.map((i) => mainPid(hosts, i)));
        await new Promise((r) => setTimeout(r, 5000));
        assert.deepStrictEqual(
            await Promise.all(CLIENTS.map((i) => mainPid(hosts, i))),
            clientPids,
            "a client restarted after its step had ended",
        );
        // The provider's progress lines (info, with the resource's URN); the SDK's debug log repeats
        // each command's stdout inside its RegisterResource response.
        const transfers = update.diagnostics
            .filter((d) => d.severity === "info" && d.urn !== "" && /transferring leadership/.test(d.message))
            .map((d) => nameOf(d.urn));
        figure(
            `3. rolling logLevel change: ${(update.ms / 1000).toFixed(1)} s; ${summary(update)}; SSH sessions: ${sessionsText(sessions)}; ` +
                `restart order ${byHosts.map((i) => hosts.hosts[i - 1].name).join(" → ")}; leadership handed over by: ${transfers.join(", ") || "none"}; ` +
                `longest leaderless gap ${watch.longestGapMs} ms (${watch.ticks} polls)`,
        );
        assert.ok(watch.longestGapMs <= 2000, `leaderless for ${watch.longestGapMs} ms`);
        // As in the replay suite: the leader hands over to an already changed server, so leadership
        // moves once (twice if the first server in the order was the leader), plus once per
        // election a restarted server forced.
        const elections = await electionsStartedByTimeout(hosts, SERVERS, rolloutStart);
        figure(`3. elections started by a server's heartbeat timeout: ${elections.length} ${elections.join(" | ")}`);
        assertHandOvers(
            byHosts.map((i) => progressOf(update, i)),
            byHosts.map(addr),
            leaderBefore.startsWith(addr(byHosts[0]) + ":"),
            elections.length,
        );
        await waitFor(
            "5 alive members",
            async () => (await members(access)).filter((m) => m.Status === 1).length === 5,
            60_000,
        );
        const self = await api(addr(2), "/v1/agent/self", { ca: access.ca, token: access.token });
        assert.match(self.body, /"LogLevel":"DEBUG"/);
        assert.match(await leaderOf(addr(1), access.ca), /:8300$/);
    });

    it("3b. a broken change: consul validate refuses it on the first server, nothing else is touched, reverting is a no-op", async () => {
        // The replay suite's scenario 4: a retention Go cannot hold passes the program's check but
        // not `consul validate` on the host.
        const pids = await Promise.all(stackHosts.map((i) => mainPid(hosts, i)));
        const configBefore = await hosts.run(1, "cat /etc/consul.d/consul.json");
        const broken = stackConfig({ logLevel: "debug", telemetryRetention: "9999999h" });
        project.setConfig(broken);
        const { update, sessions } = await recorded(() => project.update("up"));
        const failed = update.diagnostics.filter((d) => /validate: FAILED/.test(d.message));
        figure(
            `3b. broken change: exit ${update.code}; ${summary(update)}; SSH sessions: ${sessionsText(sessions)}; ` +
                `error ends: ${JSON.stringify(
                    failed[0]?.message
                        .split("\n")
                        .filter((l) => /FAILED/.test(l))
                        .pop(),
                )}`,
        );
        assert.notStrictEqual(update.code, 0, "pulumi up accepted a config consul validate rejects");
        assert.ok(failed.length >= 1, update.output.slice(-3000));
        assert.match(failed[0].message, /consul-host-1 validate: FAILED: consul validate rejected the new config/);
        assert.match(failed[0].message, /prometheus_retention_time/);
        assert.deepStrictEqual(sessions, [1, 0, 0, 0, 0], "hosts after the failed one must not be touched");
        assert.deepStrictEqual(await Promise.all(stackHosts.map((i) => mainPid(hosts, i))), pids);
        assert.strictEqual(await hosts.run(1, "cat /etc/consul.d/consul.json"), configBefore);
        assert.match(await leaderOf(addr(1), access.ca), /:8300$/);
        // The engine kept the failed resource's old state, so the last good config changes nothing;
        // the replay model (which never saw the failed update applied) agrees.
        project.setConfig(config);
        const back = await recorded(() => project.update("up", ["--expect-no-changes"]));
        assertSucceeded(back.update, "pulumi up back to the last good config");
        assert.deepStrictEqual(back.sessions, [0, 0, 0, 0, 0]);
        assert.deepStrictEqual(differences(commandOps(back.update), await replayModel(config)), []);
    });

    /** Host i's file tree and accounts are as before the first deploy. */
    async function assertClean(i: number): Promise<void> {
        const k = [...stackHosts, ...EXTRA_SERVERS].indexOf(i);
        const now = await hosts.run(i, SNAPSHOT);
        if (now !== cleanSnapshots[k]) {
            const [a, b] = [new Set(cleanSnapshots[k].split("\n")), new Set(now.split("\n"))];
            const added = [...b].filter((l) => !a.has(l));
            const removed = [...a].filter((l) => !b.has(l));
            assert.fail(
                `host ${addr(i)} is not clean: added ${JSON.stringify(added)}, removed ${JSON.stringify(removed)}`,
            );
        }
    }

    /** The servers' progress lines of one update (the provider logs each command's stdout, info). */
    function progressOf(update: Update, hostIndex: number): string {
        const name = hosts.hosts[hostIndex - 1].name;
        return update.diagnostics
            .filter((d) => d.severity === "info" && nameOf(d.urn).includes(`-server-${name}-agent`))
            .map((d) => d.message)
            .join("\n");
    }

    const kv = (): KvAccess => ({ ca: access.ca, token: access.token });
    /** What the update's commands printed (the provider logs each command's stdout at info). */
    const printed = (update: Update) =>
        update.diagnostics
            .filter((d) => d.severity === "info")
            .map((d) => d.message)
            .join("\n");

    it("3c. a failed upgrade (a binary that cannot start) is rolled back on server 1; nothing after it runs", async () => {
        await writeBulk(addr(1), kv(), "engine/c");
        const pids = await Promise.all(stackHosts.map((i) => mainPid(hosts, i)));
        const watch = await ScenarioWatch.start(SERVERS.map(addr), SERVERS.map(addr), kv(), "engine-failed-upgrade");
        project.setConfig(stackConfig({ logLevel: "debug" }, SERVERS, BROKEN_VERSION));
        const { update, sessions } = await recorded(() => project.update("up"));
        const w = await watch.stop();
        const failed = update.diagnostics.filter((d) => /wait: FAILED/.test(d.message));
        assert.notStrictEqual(update.code, 0, "pulumi up accepted a release that cannot start");
        assert.ok(failed.length >= 1, update.output.slice(-3000));
        assert.match(
            failed[0].message,
            /consul-host-1 wait: FAILED: .*rolled back to the previous binary and files, and the old agent is running and healthy again/,
        );
        assert.deepStrictEqual(sessions, [1, 0, 0, 0, 0], "hosts after the failed one must not be touched");
        assert.deepStrictEqual((await Promise.all(stackHosts.map((i) => mainPid(hosts, i)))).slice(1), pids.slice(1));
        assert.match(
            await hosts.run(1, "/usr/local/bin/consul version"),
            new RegExp(`^Consul v${artifacts.consulVersion}`),
        );
        // The failed resource kept its old state: the good release changes nothing.
        project.setConfig(config);
        const back = await recorded(() => project.update("up", ["--expect-no-changes"]));
        assertSucceeded(back.update, "pulumi up back to the running release");
        await replayModel(config);
        const lost = await assertNoKeyLost(SERVERS.map(addr), kv(), ["engine/c"]);
        figure(
            `3c. failed upgrade to ${BROKEN_VERSION}: SSH sessions ${sessionsText(sessions)}; ${failed[0].message
                .split("\n")
                .filter((l) => /FAILED/.test(l))
                .pop()}; ` +
                `ops checked ${w.check.ops}, linearizable ${w.check.linearizable ? "yes" : "no"}, keys lost ${lost}, longest leaderless gap ${w.gapMs} ms`,
        );
    });

    it("3d. the SSH session to server 2 drops in its health wait: the update fails there; the re-run waits for server 2 before server 3", async () => {
        await writeBulk(addr(1), kv(), "engine/b");
        const pid3 = await mainPid(hosts, 3);
        const invocation2 = async () => (await hosts.run(2, "systemctl show -p InvocationID --value consul")).trim();
        const before2 = await invocation2();
        const watch = await ScenarioWatch.start(SERVERS.map(addr), SERVERS.map(addr), kv(), "engine-ssh-drop");
        config = stackConfig({ logLevel: "warn" });
        project.setConfig(config);
        const updating = recorded(() => project.update("up"));
        await waitFor(
            "server 2's agent restarted by the update",
            async () => (await invocation2()) !== before2,
            300_000,
            200,
        );
        await hosts.dropApplySession(2);
        const { update } = await updating;
        assert.notStrictEqual(update.code, 0, "the update did not notice the dropped session");
        assert.ok(
            update.diagnostics.some(
                (d) => d.severity === "error" && nameOf(d.urn).includes("-server-consul-host-2-agent"),
            ),
            update.output.slice(-3000),
        );
        assert.strictEqual(await mainPid(hosts, 3), pid3, "server 3 was restarted after server 2's step failed");
        const again = await recorded(() => project.update("up"));
        const w = await watch.stop();
        assertSucceeded(again.update, "the re-run after the dropped session");
        const steps = assertOneServerAtATime(again.update);
        assert.deepStrictEqual(
            steps.map((s) => nameOf(s.urn)),
            [2, 3].map((i) => `consul-vm-server-${hosts.hosts[i - 1].name}-agent`),
        );
        assert.match(progressOf(again.update, 2), /nothing changed, agent left running/);
        assert.match(progressOf(again.update, 2), /alive, leader .*, autopilot healthy/);
        // (The replay model has no failed half-update to compare this re-run with; it moves on.)
        await replayModel(config);
        const lost = await assertNoKeyLost(SERVERS.map(addr), kv(), ["engine/b"]);
        figure(
            `3d. SSH drop on server 2: the update failed there; the re-run ran ${steps.map((s) => nameOf(s.urn)).join(", ")} in order; ` +
                `ops checked ${w.check.ops}, linearizable ${w.check.linearizable ? "yes" : "no"}, keys lost ${lost}, longest leaderless gap ${w.gapMs} ms`,
        );
    });

    it("3e. server 3 reached on another SSH port: an update of that host alone, same node ID, then back", async () => {
        const nodeId = async () =>
            (JSON.parse((await api(addr(3), "/v1/agent/self", kv())).body) as { Config: { NodeID: string } }).Config
                .NodeID;
        const id = await nodeId();
        await hosts.run(
            3,
            "printf 'Port 22\\nPort 2222\\n' > /etc/ssh/sshd_config.d/10-ports.conf && systemctl reload ssh",
        );
        const entries = (third: string) =>
            JSON.stringify(SERVERS.map((i) => `${hosts.hosts[i - 1].name}=${i === 3 ? third : addr(i)}`));
        const moved = stackConfig({ logLevel: "warn", serverHosts: entries(`${addr(3)}:2222`) });
        project.setConfig(moved);
        const { update, sessions } = await recorded(() => project.update("up"));
        assertSucceeded(update, "pulumi up with server 3 on port 2222");
        assert.deepStrictEqual(
            update.steps
                .filter((s) => s.op !== "same" && s.type === COMMAND_TYPE)
                .map((s) => `${s.op} ${nameOf(s.urn)}`),
            ["update consul-vm-server-consul-host-3-agent"],
        );
        assert.deepStrictEqual(differences(commandOps(update), await replayModel(moved)), []);
        assert.strictEqual(await nodeId(), id);
        // Back to port 22, and the test's sshd change undone (scenario 5 wants a clean host).
        project.setConfig(config);
        assertSucceeded((await recorded(() => project.update("up"))).update, "pulumi up back to port 22");
        await replayModel(config);
        await hosts.run(3, "rm /etc/ssh/sshd_config.d/10-ports.conf && systemctl reload ssh");
        figure(
            `3e. server 3 on SSH port 2222: ${summary(update)}; SSH sessions ${sessionsText(sessions)}; node ID kept`,
        );
    });

    it("3f. scale 3 → 5 → 3 servers: the old ones reloaded, not restarted; the removed ones leave and are cleaned", async () => {
        await writeBulk(addr(1), kv(), "engine/a");
        const pids = await Promise.all(SERVERS.map((i) => mainPid(hosts, i)));
        const five = [...SERVERS, ...EXTRA_SERVERS];
        const watch = await ScenarioWatch.start(SERVERS.map(addr), SERVERS.map(addr), kv(), "engine-scale");
        const up = stackConfig({ logLevel: "warn" }, five);
        project.setConfig(up);
        const grown = await recorded(() => project.update("up"));
        assertSucceeded(grown.update, "pulumi up with 5 servers");
        assert.deepStrictEqual(differences(commandOps(grown.update), await replayModel(up)), []);
        assert.deepStrictEqual(
            await Promise.all(SERVERS.map((i) => mainPid(hosts, i))),
            pids,
            "an old server restarted",
        );
        const voters = async () =>
            (
                JSON.parse((await api(addr(1), "/v1/operator/raft/configuration", kv())).body) as {
                    Servers: { Voter: boolean }[];
                }
            ).Servers.filter((x) => x.Voter).length;
        await waitFor("5 voters", async () => (await voters()) === 5, 120_000);
        project.setConfig(config);
        const shrunk = await recorded(() => project.update("up"));
        const w = await watch.stop();
        assertSucceeded(shrunk.update, "pulumi up back to 3 servers");
        assert.deepStrictEqual(differences(commandOps(shrunk.update), await replayModel(config)), []);
        assert.deepStrictEqual(
            shrunk.update.steps
                .filter((s) => s.op === "delete" && s.type === COMMAND_TYPE)
                .map((s) => nameOf(s.urn))
                .sort(),
            EXTRA_SERVERS.map((i) => `consul-vm-server-${hosts.hosts[i - 1].name}-agent`).sort(),
        );
        await waitFor("3 voters", async () => (await voters()) === 3, 120_000);
        for (const i of EXTRA_SERVERS) await assertClean(i);
        const lost = await assertNoKeyLost(SERVERS.map(addr), kv(), ["engine/a"]);
        figure(
            `3f. scale 3 → 5 → 3: ${summary(grown.update)}, then ${summary(shrunk.update)}; ` +
                `ops checked ${w.check.ops}, linearizable ${w.check.linearizable ? "yes" : "no"}, keys lost ${lost}, longest leaderless gap ${w.gapMs} ms`,
        );
    });

    it("3g. server 1 presents another SSH host key: the provider refuses it before logging in, nothing is sent; the key back, nothing to do", async () => {
        const pid = await mainPid(hosts, 1);
        const pinned = hosts.hostKeys[0];
        // A change to deploy, with the keys pinned as they were: only the host changes.
        const changed = stackConfig({ logLevel: "debug" });
        const impostor = await hosts.newHostKey(1);
        assert.notStrictEqual(impostor, pinned);
        try {
            project.setConfig(changed);
            const { update, sessions } = await recorded(() => project.update("up"));
            assert.notStrictEqual(update.code, 0, "pulumi up went on with a host that presents another key");
            assert.match(update.output, /ssh: handshake failed: ssh: host key mismatch/, update.output.slice(-3000));
            // An update of the same machine (the pin did not change), not a replacement.
            assert.doesNotMatch(update.output, /deleting original|replacing|creating replacement/);
            assert.match(update.output, /consul-vm-server-consul-host-1-agent +updating/);
            // sshd counts no login on any host: the first step stopped at the key exchange, so no
            // stdin (the gossip key, TLS keys, tokens) went anywhere, and nothing ran after it.
            assert.deepStrictEqual(sessions, [0, 0, 0, 0, 0]);
            assert.strictEqual(await mainPid(hosts, 1), pid);
            const leftovers = await hosts.exec(1, "ls -d /tmp/consul-pulumi.* 2>/dev/null");
            assert.strictEqual(leftovers.stdout, "", "a work directory on the host: something ran");
            figure(
                `3g. server 1 with another host key: ${update.output
                    .split("\n")
                    .find((l) => /host key mismatch/.test(l))
                    ?.trim()}; SSH logins ${sessionsText(sessions)}`,
            );
        } finally {
            await hosts.restoreHostKey(1);
        }
        assert.strictEqual(hosts.hostKeys[0], pinned);
        project.setConfig(config);
        const back = await recorded(() => project.update("up", ["--expect-no-changes"]));
        assertSucceeded(back.update, "pulumi up with the host's own key back");
        await replayModel(config);
    });

    it("3h. a new gossipKeyKeeper rotates the key: keyring install, the rollout, use and remove; every member alive, no agent restarted", async () => {
        const pids = await Promise.all(stackHosts.map((i) => mainPid(hosts, i)));
        const names = stackHosts.map((i) => hosts.hosts[i - 1].name);
        const watch = new MemberWatch(() => addr(1), kv(), names);
        // On top of what the last scenarios left (logLevel warn): only the keeper changes.
        config = { ...config, gossipKeyKeeper: "engine-rotated" };
        project.setConfig(config);
        const { update, sessions } = await recorded(() => project.update("up"));
        await watch.stop();
        assertSucceeded(update, "pulumi up with a new gossipKeyKeeper");
        assert.deepStrictEqual(differences(commandOps(update), await replayModel(config)), []);
        assert.match(printed(update), /keyring-install: new gossip key installed on every member/);
        assert.match(
            printed(update),
            /keyring-finish: one gossip key, primary on every member .*; 1 old key\(s\) removed/,
        );
        // The first server runs the install, its own update and the finish; every other host its update.
        assert.deepStrictEqual(sessions, [3, 1, 1, 1, 1]);
        assert.deepStrictEqual(watch.notAlive, [], "a member was not alive during the rotation");
        assert.deepStrictEqual(await Promise.all(stackHosts.map((i) => mainPid(hosts, i))), pids, "an agent restarted");
        const newKey = (await project.outputs()).gossipKey;
        assert.ok(typeof newKey === "string" && newKey !== gossipKey, "the stack's gossip key did not change");
        // Consul answers 500 while a member does not answer the keyring query yet.
        let body = "";
        await waitFor(
            "every member to answer the keyring query",
            async () => {
                const r = await api(addr(1), "/v1/operator/keyring", kv());
                body = r.body;
                return r.status === 200;
            },
            60_000,
            1000,
        );
        const ring = JSON.parse(body) as { WAN: boolean; Keys: Record<string, number> }[];
        for (const pool of ring) {
            assert.deepStrictEqual(pool.Keys, { [newKey]: pool.WAN ? SERVERS.length : stackHosts.length });
        }
        figure(
            `3h. gossip-key rotation under the engine: ${summary(update)}; ${watch.samples} polls at 1 s, every member alive; 0 agents restarted; SSH sessions ${sessionsText(sessions)}`,
        );
        gossipKey = newKey;
    });

    it("3i. a new CA in three pulumi ups (trust both, reissue, drop the old one): every host reloaded each time, none restarted", async () => {
        const pids = await Promise.all(stackHosts.map((i) => mainPid(hosts, i)));
        const base = config;
        const rotating = { ...base, caKeeper: "engine-2", caPreviousKeeper: "initial" };
        const phases: string[] = [];
        for (const [phase, overrides] of [
            ["trust", { ...rotating, caRotationPhase: "trust" }],
            ["reissue", { ...rotating, caRotationPhase: "reissue" }],
            ["drop", { ...base, caKeeper: "engine-2" }],
        ] as const) {
            config = overrides;
            project.setConfig(config);
            const { update, sessions } = await recorded(() => project.update("up"));
            assertSucceeded(update, `pulumi up, CA rotation phase ${phase}`);
            assert.deepStrictEqual(differences(commandOps(update), await replayModel(config)), []);
            const reloads = (printed(update).match(/compare: \d+ changed, action: reload/g) ?? []).length;
            assert.strictEqual(reloads, stackHosts.length, `${phase}: ${reloads} reloads`);
            assert.deepStrictEqual(sessions, [1, 1, 1, 1, 1], phase);
            phases.push(`${phase}: ${summary(update)}, ${reloads} reloads`);
        }
        assert.deepStrictEqual(await Promise.all(stackHosts.map((i) => mainPid(hosts, i))), pids, "an agent restarted");
        const ca = String((await project.outputs()).caCertPem);
        assert.strictEqual(ca.match(/BEGIN CERTIFICATE/g)?.length, 1);
        assert.notStrictEqual(ca.trim(), access.ca.trim());
        for (const i of SERVERS)
            assert.strictEqual((await hosts.run(i, "cat /etc/consul.d/tls/ca.pem")).trim(), ca.trim());
        access = { ...access, ca };
        await waitFor(
            "a leader with the new CA",
            async () => (await api(addr(1), "/v1/status/leader", kv())).status === 200,
            60_000,
        );
        figure(`3i. CA rotation under the engine: ${phases.join("; ")}; 0 agents restarted`);
    });

    it("4. no secret in the engine's output or its event log; the SDK's debug log does hold the SSH key", async () => {
        const key = fs.readFileSync(hosts.sshKeyPath, "utf8");
        const keyBody = key.split("\n").find((l) => l.length > 40 && !l.startsWith("-----")) ?? key;
        // Every secret the stack holds, from its decrypted state: each RandomPassword seed with the
        // gossip key and token IDs derived from it, and each line of every TLS private key.
        const state = JSON.parse(await project.exportState(true)) as {
            deployment: { resources?: { type: string; urn: string; outputs?: Record<string, unknown> }[] };
        };
        // --show-secrets writes a secret as {<signature>: ..., plaintext: <its JSON>}.
        const reveal = (v: unknown): unknown =>
            typeof v === "object" && v !== null && typeof (v as { plaintext?: unknown }).plaintext === "string"
                ? JSON.parse((v as { plaintext: string }).plaintext)
                : v;
        const resources = (state.deployment.resources ?? []).map((r) => ({
            ...r,
            outputs: Object.fromEntries(Object.entries(r.outputs ?? {}).map(([k, v]) => [k, reveal(v)])),
        }));
        const secrets: [string, string][] = [
            ["gossip key", gossipKey],
            ["ACL management token", access.token],
            ["SSH private key", keyBody],
        ];
        for (const r of resources) {
            const result = r.outputs?.result;
            if (r.type === TYPES.randomPassword && typeof result === "string") {
                secrets.push(
                    [`seed of ${nameOf(r.urn)}`, result],
                    [`gossip key from ${nameOf(r.urn)}`, gossipKeyFromSeed(result)],
                    [`token from ${nameOf(r.urn)}`, tokenFromSeed(result)],
                );
            }
            const pem = r.outputs?.privateKeyPem;
            if (r.type === TYPES.privateKey && typeof pem === "string") {
                pem.split("\n")
                    .filter((l) => l.length >= 40 && !l.startsWith("-----"))
                    .forEach((l, n) => secrets.push([`line ${n + 1} of ${nameOf(r.urn)}'s private key`, l]));
            }
        }
        const seeds = resources.filter((r) => r.type === TYPES.randomPassword).length;
        const tlsKeys = resources.filter((r) => r.type === TYPES.privateKey).length;
        // The gossip seed and the two token seeds; the CA, each server's and the CLI's keys.
        assert.ok(seeds >= 3 && tlsKeys >= SERVERS.length + 2, `${seeds} seeds, ${tlsKeys} TLS keys in the state`);
        assert.ok(logs.length >= 8, "the updates' logs were not recorded");
        for (const [what, value] of secrets) {
            assert.ok(value.length >= 20, `${what} is not known to the test`);
            for (const log of logs) {
                const at = log.text.indexOf(value);
                if (at >= 0) {
                    // Where it is, without printing it.
                    const before = log.text.slice(Math.max(0, at - 300), at);
                    assert.fail(`the ${what} is in ${log.what}, after: ${JSON.stringify(before)}`);
                }
            }
        }
        // @pulumi/pulumi logs each RegisterResource response at debug level, secret values in
        // plaintext: the command's `connection` holds the SSH key. The CLI shows debug messages only
        // with --debug (and Pulumi Cloud keeps them only then); docs/troubleshooting.md says so.
        const withKey = debugLines.filter((l) => l.includes(keyBody)).length;
        figure(
            `4. ${logs.length / 2} updates' output and event logs (${logs.reduce((n, l) => n + l.text.length, 0)} chars) searched: ` +
                `none of ${secrets.length} secrets (${seeds} seeds with the gossip key and tokens from them, ${tlsKeys} TLS private keys, the SSH key); the SDK's debug-level messages (--debug only): ${debugLines.length}, ${withKey} with the SSH key`,
        );
    });

    it("5. pulumi destroy: every agent leaves, the hosts are as clean as before the first deploy", async () => {
        const { update, sessions } = await recorded(() => project.update("destroy"));
        assertSucceeded(update, "pulumi destroy");
        figure(
            `5. pulumi destroy: ${(update.ms / 1000).toFixed(1)} s; ${summary(update)}; SSH sessions: ${sessionsText(sessions)}`,
        );
        assert.deepStrictEqual(differences(commandOps(update), await replayModel("destroy")), []);
        assert.deepStrictEqual(sessions, [1, 1, 1, 1, 1]);
        for (const i of stackHosts) await assertClean(i);
        const state = JSON.parse(await project.exportState(false)) as { deployment: { resources?: unknown[] } };
        assert.deepStrictEqual(state.deployment.resources ?? [], []);
    });
});
