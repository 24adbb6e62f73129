// Guided recovery from lost quorum on the VM servers (docs/runbooks/lost-quorum.md):
//   npm run recover-quorum -- --stack <name> --dead <name>[,<name>...] [--config-file <file>] [--dry-run]
// Reads the stack's config (the program's own parser), inspects every server over SSH with its
// pinned host key, and only when every check in components/recovery/decide.ts passes stops the
// survivors, writes the same raft/peers.json on each, starts them in order and waits for a leader.
// Exit status: 0 recovered (or --dry-run with a plan), 2 refused (nothing touched), 1 failed midway.

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import { expandHome, parseSettings, Settings } from "../components/config";
import {
    Access,
    decideRecovery,
    describeServer,
    inspect,
    knownHostsText,
    markRecoveryStart,
    nextSteps,
    phase,
    rawConfigFromPulumiJson,
    rawConfigFromStackFile,
    RawStackConfig,
    renderPeersJson,
    say,
    waitForLeader,
} from "../components/recovery";

const ROOT = path.join(__dirname, "..");

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
        const started = markRecoveryStart();
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
        await phase(a, plan, "join", stopped);
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
