// Guided recovery from lost quorum on the VM servers (docs/runbooks/lost-quorum.md):
//   npm run recover-quorum -- --stack <name> --dead <name>[,<name>...] [--config-file <file>] [--dry-run]
// Reads the stack's config (the program's own parser), inspects every server over SSH with its
// pinned host key, and only when every check in components/recovery/decide.ts passes stops the
// survivors, writes the same raft/peers.json on each, starts them in order and waits for a leader.
// Exit status: 0 recovered (or --dry-run with a plan), 2 refused (nothing touched), 1 failed midway.

import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import { hostPort } from "../components/agent";
import { expandHome, Host, parseSettings, Settings } from "../components/config";
import {
    decideRecovery,
    inspectScript,
    knownHostsText,
    describeServer,
    nextSteps,
    Observation,
    parseHostReport,
    parseKeyValues,
    parseRaftConfiguration,
    rawConfigFromPulumiJson,
    rawConfigFromStackFile,
    RawStackConfig,
    raftHost,
    RecoverPhase,
    recoverScript,
    RecoveryPlan,
    renderPeersJson,
    sshArgs,
} from "../components/recovery";
import { wrapForUser } from "../components/vm";

const ROOT = path.join(__dirname, "..");
const say = (line: string) => process.stdout.write(`${line}\n`);

class Refused extends Error {}

interface Options {
    stack: string;
    configFile?: string;
    dead: string[];
    dryRun: boolean;
    waitSeconds: number;
}

function parseOptions(argv: string[]): Options {
    const { values } = parseArgs({
        args: argv,
        strict: true,
        options: {
            stack: { type: "string", default: "" },
            "config-file": { type: "string" },
            dead: { type: "string", default: "" },
            "dry-run": { type: "boolean", default: false },
            "wait-seconds": { type: "string", default: "120" },
        },
    });
    const o: Options = {
        stack: values.stack,
        configFile: values["config-file"],
        dead: values.dead
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
        dryRun: values["dry-run"],
        waitSeconds: Number(values["wait-seconds"]),
    };
    if (o.configFile && !o.stack) o.stack = /^Pulumi\.(.+)\.ya?ml$/.exec(path.basename(o.configFile))?.[1] ?? "";
    if (!o.stack)
        throw new Refused("give --stack <name> (and --config-file <Pulumi.<stack>.yaml> to read the file alone)");
    if (!Number.isInteger(o.waitSeconds) || o.waitSeconds < 10) throw new Refused("--wait-seconds must be 10 or more");
    return o;
}

/** The stack's config, from its file or (secrets included) from `pulumi config`. */
function loadStack(o: Options): { settings: Settings; raw: Record<string, string> } {
    const project = (yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { name: string }).name;
    let config: RawStackConfig;
    if (o.configFile) {
        config = rawConfigFromStackFile(yaml.load(fs.readFileSync(o.configFile, "utf8")), project);
        if (config.encrypted.length > 0) {
            throw new Refused(
                `${o.configFile} holds ${config.encrypted.join(", ")} encrypted; run without --config-file so the values come from \`pulumi config --show-secrets\`.`,
            );
        }
    } else {
        // The secrets come back on this pipe only; nothing prints them.
        const r = spawnSync("pulumi", ["config", "--json", "--show-secrets", "--stack", o.stack], {
            cwd: ROOT,
            encoding: "utf8",
            maxBuffer: 16 * 1024 * 1024,
        });
        if (r.status !== 0)
            throw new Refused(`pulumi config --stack ${o.stack} failed: ${r.error?.message ?? r.stderr}`);
        let json: unknown;
        try {
            json = JSON.parse(r.stdout);
        } catch {
            // JSON.parse's message quotes the text, which holds secrets.
            throw new Refused(`pulumi config --stack ${o.stack} printed no JSON`);
        }
        config = rawConfigFromPulumiJson(json, project);
    }
    return {
        settings: parseSettings(config.raw, project, o.stack, { secretKeys: config.secretKeys }),
        raw: config.raw,
    };
}

interface Access {
    readonly settings: Settings;
    readonly servers: readonly Host[];
    readonly user: string;
    readonly hostKeys: Readonly<Record<string, string>>;
    readonly keyFile: string;
    readonly knownHostsFile: string;
    readonly waitSeconds: number;
}

function prepareAccess(settings: Settings, raw: Record<string, string>, dir: string, waitSeconds: number): Access {
    const vm = settings.vm;
    if (!vm || settings.topology === "kubernetes")
        throw new Refused("this command recovers VM servers; the stack's topology is kubernetes");
    if (vm.bastion)
        throw new Refused(
            "consul:sshBastion is set: this command reaches hosts directly only; recover by hand (docs/runbooks/lost-quorum.md)",
        );
    const hostKeys = vm.hostKeys ?? {};
    const unpinned = vm.servers.filter((h) => hostKeys[h.name] === undefined).map((h) => h.name);
    if (unpinned.length > 0) {
        throw new Refused(
            `no pinned SSH host key for ${unpinned.join(", ")} (consul:sshHostKeys): this command never connects to a host it cannot verify.`,
        );
    }
    const knownHostsFile = path.join(dir, "known_hosts");
    fs.writeFileSync(knownHostsFile, knownHostsText(hostKeys, vm.servers), { mode: 0o600 });
    let keyFile = raw.sshPrivateKeyPath ? expandHome(raw.sshPrivateKeyPath) : "";
    if (!keyFile) {
        keyFile = path.join(dir, "ssh_key");
        fs.writeFileSync(keyFile, (raw.sshPrivateKey ?? "").replace(/\r/g, "").trimEnd() + "\n", { mode: 0o600 });
    }
    return { settings, servers: vm.servers, user: vm.sshUser, hostKeys, keyFile, knownHostsFile, waitSeconds };
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

async function inspect(a: Access): Promise<Observation[]> {
    const https = a.settings.ports.https;
    return Promise.all(
        a.servers.map(async (host): Promise<Observation> => {
            const r = await run(a, host, inspectScript({ nodeName: host.name, httpsPort: https }), 30_000);
            // 255 is ssh's own failure (no route, refused, host key): the host did not answer.
            if (r.code === 255) return { name: host.name, reachable: false, error: r.stderr.split("\n").pop() };
            if (r.code !== 0) return { name: host.name, reachable: true, error: r.stderr };
            try {
                return { name: host.name, reachable: true, report: parseHostReport(r.stdout) };
            } catch (err) {
                return { name: host.name, reachable: true, error: (err as Error).message };
            }
        }),
    );
}

async function phase(a: Access, plan: RecoveryPlan, which: RecoverPhase, names: readonly string[]): Promise<string[]> {
    const done: string[] = [];
    for (const s of plan.survivors.filter((p) => names.includes(p.name))) {
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
        for (const line of r.stdout.trim().split("\n")) if (line && !line.includes("=")) say(`  ${line}`);
        done.push(s.name);
    }
    return done;
}

/** After the start: every survivor sees one leader, and the Raft configuration is the survivors. */
async function waitForLeader(a: Access, plan: RecoveryPlan): Promise<string> {
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
            `  ${x.name}: leader ${x.values.get("leader")}, agent ${x.values.get("active")}, voters ${raft.map((p) => p.node).join(", ")}, peers.json ${x.values.get("peers_json") === "no" ? "consumed" : "still there"}`,
        );
    }
    return [...leaders][0] ?? "";
}

async function main(): Promise<number> {
    const o = parseOptions(process.argv.slice(2));
    const { settings, raw } = loadStack(o);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "recover-quorum-"));
    try {
        const a = prepareAccess(settings, raw, dir, o.waitSeconds);
        say(`Inspecting the ${a.servers.length} servers of stack ${o.stack} (pinned host keys):`);
        const observations = await inspect(a);
        a.servers.forEach((h, i) => say(`  ${describeServer(h, observations[i])}`));
        const decision = decideRecovery({
            servers: a.servers,
            observations,
            dead: o.dead,
            rpcPort: settings.ports.serverRpc,
        });
        if (!decision.ok) {
            say("Refusing to recover; nothing was changed:");
            for (const reason of decision.reasons) say(`  - ${reason}`);
            return 2;
        }
        const { plan } = decision;
        const names = plan.survivors.map((s) => s.name);
        say(
            `Plan: stop ${names.join(", ")}; write raft/peers.json on each: ${renderPeersJson(plan.survivors)}; start them in this order; wait for a leader.`,
        );
        if (o.dryRun) {
            say("--dry-run: nothing was changed.");
            return 0;
        }
        const started = Date.now();
        const stopped = await phase(a, plan, "stop", names).catch(async (err: Error) => {
            say(`Stopping failed (${err.message}); starting the survivors again without peers.json.`);
            await phase(a, plan, "start", names).catch((e: Error) => say(`  and starting failed too: ${e.message}`));
            throw err;
        });
        await phase(a, plan, "write", stopped).catch(async (err: Error) => {
            say(
                `Writing peers.json failed (${err.message}); removing it and starting the survivors again as they were.`,
            );
            await phase(a, plan, "unwrite", stopped).catch((e: Error) => say(`  removing failed: ${e.message}`));
            await phase(a, plan, "start", stopped).catch((e: Error) => say(`  starting failed: ${e.message}`));
            throw err;
        });
        await phase(a, plan, "start", stopped);
        const leader = await waitForLeader(a, plan);
        say(
            `Recovered: leader ${leader}, ${((Date.now() - started) / 1000).toFixed(1)} s from the first stop to a leader seen by every survivor.`,
        );
        say(nextSteps(plan, o.stack));
        return 0;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

main().then(
    (code) => process.exit(code),
    (err: Error) => {
        const refused =
            err instanceof Refused ||
            err.name === "ConfigError" ||
            /^ERR_PARSE_ARGS/.test(String((err as NodeJS.ErrnoException).code));
        say(`${refused ? "Refusing to recover; nothing was changed" : "Recovery FAILED"}: ${err.message}`);
        process.exit(refused ? 2 : 1);
    },
);
