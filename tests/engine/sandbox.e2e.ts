// The newcomer's path, as the README gives it: `npm run sandbox -- up`, `. env.sh`, `pulumi up
// --stack sandbox`, `consul members` on a server, and `npm run sandbox -- down`, on a machine with
// no pulumi on PATH (the sandbox offers the CLI built from Go modules). The project is a copy in a
// temporary directory (--project-dir) and the sandbox's state is there too (--dir), so nothing of
// an operator's own sandbox is touched.

import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { log, requirePrerequisites } from "../e2e/infra";
import { REPO_ROOT } from "../mocks";
import { PROJECT_FILES } from "./pulumi-cli";

interface Ran {
    readonly code: number;
    readonly output: string;
    readonly seconds: number;
}

function runIn(cwd: string, command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
    const started = Date.now();
    return new Promise((resolve) => {
        const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("close", (code) => resolve({ code: code ?? 255, output, seconds: (Date.now() - started) / 1000 }));
    });
}

describe("the sandbox: the README's deploy command on one machine", function () {
    let root = "";
    let project = "";
    let dir = "";
    let env: NodeJS.ProcessEnv = {};
    let bridge = "";
    const figures: string[] = [];
    const figure = (line: string) => {
        figures.push(line);
        log(`FIGURE ${line}`);
    };
    const sandbox = (...args: string[]) =>
        runIn(REPO_ROOT, "npm", ["run", "-s", "sandbox", "--", ...args, "--dir", dir, "--project-dir", project], env);
    const inShell = (script: string) => runIn(project, "bash", ["-c", `. ${dir}/env.sh && ${script}`], env);

    before(() => {
        requirePrerequisites();
        root = fs.mkdtempSync(path.join(os.tmpdir(), "consul-sandbox-e2e-"));
        project = path.join(root, "project");
        dir = path.join(root, "sandbox");
        fs.mkdirSync(project);
        for (const entry of PROJECT_FILES) {
            fs.cpSync(path.join(REPO_ROOT, entry), path.join(project, entry), { recursive: true });
        }
        fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(project, "node_modules"));
        // A newcomer's machine: no pulumi on PATH (whatever this machine has).
        const noPulumi = (process.env.PATH ?? "")
            .split(":")
            .filter((d) => d !== "" && !fs.existsSync(path.join(d, "pulumi")))
            .join(":");
        env = { ...process.env, PATH: noPulumi };
    });

    after(async () => {
        if (fs.existsSync(path.join(dir, "hosts"))) await sandbox("down");
        fs.rmSync(root, { recursive: true, force: true });
        log("figures:\n  " + figures.join("\n  "));
    });

    it("up: every step says what it does and how long it took; the stack file and env.sh are written", async () => {
        const up = await sandbox("up");
        assert.strictEqual(up.code, 0, up.output);
        const steps = up.output.split("\n").filter((l) => l.startsWith("==> "));
        assert.ok(steps.length >= 5, up.output);
        assert.ok(
            steps.some((l) => l.includes("no pulumi on PATH")),
            `the CLI built here is offered:\n${up.output}`,
        );
        assert.strictEqual((up.output.match(/^ {4}done in \d+\.\d s$/gm) ?? []).length, steps.length, up.output);
        assert.match(up.output, /Sandbox up: 3 servers and 2 clients/);
        assert.ok(fs.existsSync(path.join(project, "Pulumi.sandbox.yaml")));
        assert.match(fs.readFileSync(path.join(dir, "env.sh"), "utf8"), /PULUMI_BACKEND_URL=/);
        bridge = fs.readFileSync(path.join(dir, "hosts", "bridge"), "utf8").trim();
        figure(`npm run sandbox -- up (caches warm): ${up.seconds.toFixed(1)} s`);
    });

    it("a second up refuses and says what to do", async () => {
        const again = await sandbox("up");
        assert.strictEqual(again.code, 1, again.output);
        assert.match(again.output, /a sandbox is already up in /);
        assert.match(again.output, /what to do: npm run sandbox -- status, or npm run sandbox -- down first/);
    });

    it("pulumi up --stack sandbox deploys; consul members on a server lists 3 servers and 2 clients, alive", async () => {
        const deploy = await inShell("pulumi up --stack sandbox --yes --non-interactive --color never");
        assert.strictEqual(deploy.code, 0, deploy.output.slice(-4000));
        figure(`pulumi up --stack sandbox: ${deploy.seconds.toFixed(1)} s`);
        const members = await sandbox("ssh", "consul-host-1", "consul", "members");
        assert.strictEqual(members.code, 0, members.output);
        const rows = members.output
            .split("\n")
            .slice(1)
            .filter((l) => l.trim() !== "")
            .map((l) => l.trim().split(/\s+/));
        assert.deepStrictEqual(
            rows.map(([node, , status, type, , , dc]) => [node, status, type, dc]),
            [1, 2, 3, 4, 5].map((i) => [`consul-host-${i}`, "alive", i <= 3 ? "server" : "client", "sandbox"]),
            members.output,
        );
        const again = await inShell("pulumi up --stack sandbox --yes --non-interactive --expect-no-changes");
        assert.strictEqual(again.code, 0, again.output.slice(-3000));
    });

    it("down removes everything up made: hosts, bridge, the state, env.sh and the stack file", async () => {
        const down = await sandbox("down");
        assert.strictEqual(down.code, 0, down.output);
        figure(`npm run sandbox -- down: ${down.seconds.toFixed(1)} s`);
        assert.ok(!fs.existsSync(dir), `${dir} is left`);
        assert.ok(!fs.existsSync(path.join(project, "Pulumi.sandbox.yaml")), "Pulumi.sandbox.yaml is left");
        assert.notStrictEqual(spawnSync("ip", ["link", "show", bridge]).status, 0, `bridge ${bridge} is left`);
        const left = fs
            .readdirSync("/proc")
            .filter((pid) => /^\d+$/.test(pid) && pid !== String(process.pid))
            .filter((pid) => {
                try {
                    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir);
                } catch {
                    return false; // gone meanwhile
                }
            });
        assert.deepStrictEqual(left, [], "processes of the sandbox are left");
        const mounts = fs.readFileSync("/proc/mounts", "utf8");
        assert.ok(!mounts.includes(dir), "a mount is left");
    });
});
