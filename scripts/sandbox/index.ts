// A sandbox for the README's deploy command on any Linux machine with root and systemd:
//   npm run sandbox -- up [--servers 3] [--clients 2] [--build-cli]
//   npm run sandbox -- status | ssh <host> [command...] | down
// `up` builds Consul (from its Go module) and the host image, boots systemd-nspawn hosts on a
// private bridge (scripts/e2e, as the suites do), copies the Consul binary onto them, writes
// Pulumi.sandbox.yaml with their addresses and pinned host keys, and makes a file backend with
// the `sandbox` stack (and the Pulumi CLI from Go modules when none is on PATH). `down` removes
// everything `up` made. State lives in --dir (default /var/lib/consul-pulumi-sandbox).

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { shellQuote } from "../../components/shell";
import { buildEngine, ensureStack, prepareBackend, pulumiOnPath, renderEnvFile, STACK } from "./backend";
import { lastLine, run, say, step, StepError } from "./progress";
import { renderStackFile, SandboxHost, STACK_FILE_MARKER } from "./stack-file";

const REPO_ROOT = path.join(__dirname, "..", "..");
const E2E = path.join(REPO_ROOT, "scripts", "e2e");
const DEFAULT_DIR = "/var/lib/consul-pulumi-sandbox";

interface Options {
    readonly command: string;
    readonly rest: string[];
    readonly dir: string;
    readonly projectDir: string;
    readonly servers: number;
    readonly clients: number;
    readonly buildCli: boolean;
}

/** hosts.sh's hosts.json entries (the fields used here). */
interface BootedHost {
    readonly name: string;
    readonly address: string;
}

function parseOptions(argv: string[]): Options {
    const { values, positionals } = parseArgs({
        args: argv,
        strict: true,
        allowPositionals: true,
        options: {
            dir: { type: "string", default: DEFAULT_DIR },
            "project-dir": { type: "string", default: REPO_ROOT },
            servers: { type: "string", default: "3" },
            clients: { type: "string", default: "2" },
            "build-cli": { type: "boolean", default: false },
        },
    });
    const count = (name: string, value: string, min: number, max: number, fix: string): number => {
        const n = Number(value);
        if (!Number.isInteger(n) || n < min || n > max) {
            throw new StepError(`--${name} ${value}: must be a whole number from ${min} to ${max}`, fix);
        }
        return n;
    };
    const servers = count("servers", values.servers, 1, 7, "use 1, 3 or 5 (an odd count)");
    if (servers % 2 === 0) throw new StepError(`--servers ${servers}: must be odd`, "use 1, 3 or 5");
    return {
        command: positionals[0] ?? "",
        rest: positionals.slice(1),
        dir: path.resolve(values.dir),
        projectDir: path.resolve(values["project-dir"]),
        servers,
        clients: count("clients", values.clients, 0, 10, "use 0 to 10 clients"),
        buildCli: values["build-cli"],
    };
}

const hostsDir = (o: Options) => path.join(o.dir, "hosts");
const stackFile = (o: Options) => path.join(o.projectDir, `Pulumi.${STACK}.yaml`);

function requireRoot(): void {
    if (process.getuid?.() !== 0) {
        throw new StepError(
            "the sandbox boots systemd-nspawn hosts on a bridge: it needs root",
            "sudo npm run sandbox -- up",
        );
    }
    for (const tool of ["apt-get", "systemctl", "python3", "ip"]) {
        if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
            throw new StepError(`${tool} is not installed`, "the sandbox needs a Debian-like Linux with systemd");
        }
    }
}

async function up(o: Options): Promise<void> {
    requireRoot();
    if (fs.existsSync(hostsDir(o))) {
        throw new StepError(
            `a sandbox is already up in ${o.dir}`,
            "npm run sandbox -- status, or npm run sandbox -- down first",
        );
    }
    if (fs.existsSync(stackFile(o)) && !fs.readFileSync(stackFile(o), "utf8").startsWith(STACK_FILE_MARKER)) {
        throw new StepError(
            `${stackFile(o)} exists and was not written by the sandbox`,
            "move it away, or use another --project-dir",
        );
    }
    const consul = await step(
        "Consul from its Go module (build-consul.sh; about 6 min cold, cached after)",
        "see the output above; the Go module proxy must be reachable",
        async () => lastLine(await run("bash", [path.join(E2E, "build-consul.sh")])),
    );
    const version = /^Consul v(\S+)/.exec(spawnSync(consul, ["version"], { encoding: "utf8" }).stdout)?.[1] ?? "";
    await step(
        "the hosts' Debian image (image.sh; about 2 min cold, cached after)",
        "the Debian mirror of apt must be reachable",
        () => run("bash", [path.join(E2E, "image.sh")]),
    );
    const engineCache =
        o.buildCli || !pulumiOnPath()
            ? await step(
                  "no pulumi on PATH: the Pulumi CLI and providers from Go modules (scripts/engine/build.sh; about 14 min cold)",
                  "see the output above; or install the Pulumi CLI and run up again",
                  buildEngine,
              )
            : undefined;
    const n = o.servers + o.clients;
    fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    const booted = await step(
        `${n} hosts on a private bridge (hosts.sh)`,
        "npm run sandbox -- down, then up again",
        async () => {
            await run("bash", [path.join(E2E, "hosts.sh"), "up", hostsDir(o), String(n)]);
            return JSON.parse(fs.readFileSync(path.join(hostsDir(o), "hosts.json"), "utf8")) as BootedHost[];
        },
    );
    const hosts = await step(
        `Consul ${version} onto each host, and each host's SSH key`,
        "npm run sandbox -- down, then up again",
        () =>
            booted.map((h, k): SandboxHost => {
                const root = path.join(hostsDir(o), "hosts", String(k + 1), "root");
                fs.copyFileSync(consul, path.join(root, "usr", "local", "bin", "consul"));
                fs.chmodSync(path.join(root, "usr", "local", "bin", "consul"), 0o755);
                // Read from the host's own disk, not over the network: the key pinned is the key it has.
                const hostKey = fs.readFileSync(path.join(root, "etc", "ssh", "ssh_host_ed25519_key.pub"), "utf8");
                return { name: h.name, address: h.address, hostKey: hostKey.trim().split(/\s+/).slice(0, 2).join(" ") };
            }),
    );
    fs.writeFileSync(path.join(o.dir, "known_hosts"), hosts.map((h) => `${h.address} ${h.hostKey}\n`).join(""));
    await step(
        `the Pulumi backend and the ${STACK} stack in ${o.dir}`,
        "npm run sandbox -- down, then up again",
        async () => {
            const backend = await prepareBackend(o.dir, engineCache);
            await ensureStack(backend, o.projectDir);
            fs.writeFileSync(path.join(o.dir, "env.sh"), renderEnvFile(backend));
            // `stack init` wrote the passphrase's salt into the stack file; keep it, add the config.
            const salt = fs
                .readFileSync(stackFile(o), "utf8")
                .split("\n")
                .filter((l) => /^encryptionsalt:/.test(l));
            const layout = {
                servers: hosts.slice(0, o.servers),
                clients: hosts.slice(o.servers),
                sshPrivateKeyPath: path.join(hostsDir(o), "ssh_key"),
                consulVersion: version,
            };
            const lines = renderStackFile(layout).split("\n");
            const config = lines.indexOf("config:");
            fs.writeFileSync(stackFile(o), [...lines.slice(0, config), ...salt, ...lines.slice(config)].join("\n"));
        },
    );
    const dirFlag = o.dir === DEFAULT_DIR ? "" : ` --dir ${o.dir}`;
    say("");
    say(
        `Sandbox up: ${o.servers} servers and ${o.clients} clients (${hosts.map((h) => `${h.name} ${h.address}`).join(", ")}).`,
    );
    say(`Wrote ${stackFile(o)}. Deploy, then look:`);
    say(`  . ${path.join(o.dir, "env.sh")}`);
    say(`  pulumi up --stack ${STACK}`);
    say(`  npm run sandbox -- ssh ${hosts[0].name} consul members${dirFlag}`);
    say(`Remove it all: npm run sandbox -- down${dirFlag}`);
}

function hostAddress(o: Options, name: string): string {
    const file = path.join(hostsDir(o), "hosts.json");
    if (!fs.existsSync(file)) throw new StepError(`no sandbox in ${o.dir}`, "npm run sandbox -- up");
    const hosts = JSON.parse(fs.readFileSync(file, "utf8")) as BootedHost[];
    const host = hosts.find((h) => h.name === name || h.address === name);
    if (!host) throw new StepError(`no sandbox host ${name}`, `use one of ${hosts.map((h) => h.name).join(", ")}`);
    return host.address;
}

/** ssh as root, the host key checked against the one read at `up`, in a login shell (profile.d). */
function ssh(o: Options): number {
    const [name, ...command] = o.rest;
    if (!name) throw new StepError("ssh needs a host name", "npm run sandbox -- ssh <host> [command...]");
    const args = [
        ...["-i", path.join(hostsDir(o), "ssh_key"), "-o", `UserKnownHostsFile=${path.join(o.dir, "known_hosts")}`],
        ...["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"],
        ...(command.length > 0 ? [] : ["-t"]),
        `root@${hostAddress(o, name)}`,
        ...(command.length > 0 ? ["bash", "-lc", shellQuote(command.join(" "))] : []),
    ];
    return spawnSync("ssh", args, { stdio: "inherit" }).status ?? 1;
}

function status(o: Options): void {
    const file = path.join(hostsDir(o), "hosts.json");
    if (!fs.existsSync(file)) {
        say(`No sandbox in ${o.dir}.`);
        return;
    }
    for (const [k, h] of (JSON.parse(fs.readFileSync(file, "utf8")) as BootedHost[]).entries()) {
        const pid = fs.readFileSync(path.join(hostsDir(o), "hosts", String(k + 1), "pid"), "utf8").trim();
        const running = fs.existsSync(`/proc/${pid}`);
        say(`${h.name} ${h.address} ${running ? "running" : "stopped"}`);
    }
}

async function down(o: Options): Promise<void> {
    requireRoot();
    if (fs.existsSync(hostsDir(o))) {
        await step("stopping the hosts and removing the bridge (hosts.sh down)", "run down again", () =>
            run("bash", [path.join(E2E, "hosts.sh"), "down", hostsDir(o)]),
        );
    }
    if (fs.existsSync(stackFile(o))) {
        if (fs.readFileSync(stackFile(o), "utf8").startsWith(STACK_FILE_MARKER)) {
            fs.rmSync(stackFile(o));
            say(`removed ${stackFile(o)}`);
        } else {
            say(`left ${stackFile(o)}: the sandbox did not write it`);
        }
    }
    if (fs.existsSync(o.dir)) {
        fs.rmSync(o.dir, { recursive: true, force: true });
        say(`removed ${o.dir} (the stack's state, the passphrase, env.sh)`);
    }
    say("Sandbox down.");
}

async function main(): Promise<number> {
    const o = parseOptions(process.argv.slice(2));
    switch (o.command) {
        case "up":
            await up(o);
            return 0;
        case "down":
            await down(o);
            return 0;
        case "status":
            status(o);
            return 0;
        case "ssh":
            return ssh(o);
        default:
            throw new StepError(
                `unknown command "${o.command}"`,
                "npm run sandbox -- up | status | ssh <host> [command] | down",
            );
    }
}

main().then(
    (code) => process.exit(code),
    (err: Error) => {
        say(`\nsandbox: ${err.message}`);
        if (err instanceof StepError) say(`what to do: ${err.hint}`);
        process.exit(1);
    },
);
