// The command as an operator runs it, with `pulumi` replaced by a script that prints what
// `pulumi config --json --show-secrets` prints: the config goes through the program's parser, the
// secret SSH key reaches ssh through a file and never the output, and a refusal exits 2.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "../mocks";

const MARKER = "NOT-A-REAL-KEY-b64c0ffee";
const KEY = `-----BEGIN OPENSSH PRIVATE KEY-----\n${MARKER}\n-----END OPENSSH PRIVATE KEY-----\n`;
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEiIn8o2NnOTuPNw3f1rJl0WbI3gpbZ3Y6JqfVsEw3xD";

describe("recover-quorum command", function () {
    this.timeout(120_000);
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "recover-cli-"))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** Runs the command with a fake `pulumi` that prints `config` as pulumi config --json would (or fails). */
    function run(config: Record<string, unknown> | undefined, args: string[]) {
        const json = JSON.stringify(
            Object.fromEntries(
                Object.entries(config ?? {}).map(([k, v]) => [
                    `consul:${k}`,
                    typeof v === "string"
                        ? { value: v, secret: k === "sshPrivateKey" }
                        : { value: JSON.stringify(v), objectValue: v, secret: false },
                ]),
            ),
        );
        fs.writeFileSync(path.join(dir, "config.json"), json);
        fs.writeFileSync(
            path.join(dir, "pulumi"),
            config === undefined
                ? "#!/bin/sh\necho 'error: no stack named prod found' >&2\nexit 255\n"
                : `#!/bin/sh\necho "$*" > '${dir}/argv'\ncat '${dir}/config.json'\n`,
            { mode: 0o755 },
        );
        const r = spawnSync(
            path.join(REPO_ROOT, "node_modules", ".bin", "ts-node"),
            ["--transpile-only", "scripts/recover-quorum.ts", ...args],
            { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } },
        );
        return { status: r.status, out: r.stdout + r.stderr };
    }

    const vm = {
        topology: "vm",
        serverCount: "1",
        serverHosts: ["s1=127.0.0.1:1"],
        sshHostKeys: [`s1=${HOST_KEY}`],
        sshPrivateKey: KEY,
    };

    it("reads the stack through pulumi config --show-secrets and refuses a server named dead that answers; the key is never printed", () => {
        const r = run(vm, ["--stack", "prod", "--dead", "s1"]);
        assert.strictEqual(
            fs.readFileSync(path.join(dir, "argv"), "utf8").trim(),
            "config --json --show-secrets --stack prod",
        );
        assert.strictEqual(r.status, 2, r.out);
        // Port 1 refuses the connection: a machine answers there, so it is not dead.
        assert.match(r.out, /s1 is named dead but answers over SSH/);
        assert.match(r.out, /Refusing to recover; nothing was changed/);
        assert.ok(!r.out.includes(MARKER), "the SSH key was printed");
    });

    it("refuses a Kubernetes stack, a config problem (secret values not shown) and a failing pulumi", () => {
        const k8s = run({ topology: "kubernetes" }, ["--stack", "dev", "--dead", "s1"]);
        assert.strictEqual(k8s.status, 2);
        assert.match(k8s.out, /this command recovers VM servers/);
        const bad = run({ ...vm, sshPrivateKey: `not a key ${MARKER}` }, ["--stack", "prod", "--dead", "s1"]);
        assert.strictEqual(bad.status, 2);
        assert.match(bad.out, /consul:sshPrivateKey = \[secret\]: is not a PEM\/OpenSSH private key/);
        assert.ok(!bad.out.includes(MARKER), "the secret value was printed");
        const none = run(undefined, ["--stack", "prod", "--dead", "s1"]);
        assert.strictEqual(none.status, 2);
        assert.match(none.out, /pulumi config --stack prod failed: error: no stack named prod found/);
    });

    it("refuses a host without a pinned key before connecting anywhere", () => {
        const r = run({ ...vm, sshHostKeys: [] }, ["--stack", "dev", "--dead", "s1"]);
        assert.strictEqual(r.status, 2);
        assert.match(r.out, /no pinned SSH host key for s1 .* never connects to a host it cannot verify/);
    });
});
