// The images scripts/k8s/images.sh builds for the real one-node Kubernetes (issue 14), imported and
// run by a real containerd 1.6 + runc (Debian bookworm's, the node's), as the node will: a
// throwaway daemon in a temp dir, stopped and removed in after(). Needs root (containerd, runc,
// chroot) and apt for Debian's packages; not part of `npm test`.

import * as assert from "assert";
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DEFAULT_CONSUL_VERSION } from "../../components/config/schema";
import { leaderProbeScript } from "../../components/kubernetes/scripts";
import { PREVIOUS_VERSION } from "../e2e/releases";
import { REPO_ROOT } from "../mocks";

const CACHE_ROOT = path.join(
    process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? "/root", ".cache"),
    "consul-pulumi",
);
const VERSIONS = [PREVIOUS_VERSION, DEFAULT_CONSUL_VERSION];
const PAUSE = "registry.k8s.io/pause:3.10";
const consulImage = (version: string) => `docker.io/hashicorp/consul:${version}`;

function log(message: string): void {
    process.stdout.write(`      [k8s-images] ${message}\n`);
}

interface Run {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): Run {
    const r = childProcess.spawnSync(cmd, args, { encoding: "utf8", env, timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** The archive paths images.sh prints last, and how long it took. */
function buildImages(): { archives: string[]; seconds: number } {
    const start = Date.now();
    const r = run("bash", [path.join(REPO_ROOT, "scripts/k8s/images.sh"), ...VERSIONS], process.env, 60 * 60_000);
    assert.strictEqual(r.status, 0, `scripts/k8s/images.sh failed:\n${r.stderr}`);
    return { archives: r.stdout.trim().split("\n").slice(-3), seconds: (Date.now() - start) / 1000 };
}

/** containerd, ctr and runc from Debian's packages, unpacked (not installed: no service starts). */
function containerdTools(): string {
    const dir = path.join(CACHE_ROOT, "debs-containerd");
    const bin = path.join(dir, "root/usr/bin");
    if (fs.existsSync(path.join(bin, "containerd")) && fs.existsSync(path.join(bin, "runc"))) return bin;
    fs.mkdirSync(dir, { recursive: true });
    const script = [
        "set -eu",
        "apt-get -o APT::Sandbox::User=root download containerd runc || { apt-get update -qq && apt-get -o APT::Sandbox::User=root download containerd runc; }",
        'for deb in ./*.deb; do dpkg-deb -x "$deb" root; done',
    ].join("\n");
    const r = childProcess.spawnSync("sh", ["-c", script], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0 || !fs.existsSync(path.join(bin, "containerd")))
        throw new Error("could not unpack Debian's containerd and runc (apt-get download containerd runc)");
    return bin;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("container images for the real Kubernetes node (scripts/k8s/images.sh, containerd 1.6)", function () {
    this.timeout(30 * 60_000);
    let dir = "";
    let daemon: childProcess.ChildProcess | undefined;
    let env: NodeJS.ProcessEnv = process.env;
    let archives: string[] = [];
    const ctr = (...args: string[]) =>
        run("ctr", ["--address", path.join(dir, "containerd.sock"), "-n", "k8s.io", ...args], env);
    /** `ctr run --rm` of image with argv; its exit status and output. */
    const runIn = (image: string, id: string, ...argv: string[]) => ctr("run", "--rm", image, id, ...argv);

    before(async function () {
        const cold = buildImages();
        archives = cold.archives;
        log(`images.sh: ${cold.seconds.toFixed(1)}s; ${archives.join(", ")}`);
        const bin = containerdTools();
        env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` };
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8s-images-"));
        const config = [
            "version = 2",
            `root = "${dir}/root"`,
            `state = "${dir}/state"`,
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
            `[grpc]\n  address = "${dir}/containerd.sock"`,
            `[ttrpc]\n  address = "${dir}/containerd.sock.ttrpc"`,
            "",
        ].join("\n");
        fs.writeFileSync(path.join(dir, "config.toml"), config);
        const out = fs.openSync(path.join(dir, "containerd.log"), "a");
        daemon = childProcess.spawn("containerd", ["--config", path.join(dir, "config.toml")], {
            env,
            stdio: ["ignore", out, out],
        });
        for (let i = 0; ctr("version").status !== 0; i++) {
            if (i > 50)
                throw new Error(
                    `containerd did not start:\n${fs.readFileSync(path.join(dir, "containerd.log"), "utf8")}`,
                );
            await sleep(200);
        }
    });

    after(async function () {
        if (daemon?.pid !== undefined && daemon.exitCode === null) {
            daemon.kill("SIGTERM");
            for (let i = 0; i < 50 && daemon.exitCode === null; i++) await sleep(100);
        }
        if (!dir) return;
        // Whatever a failed run left mounted under the daemon's root, then the dir.
        const mounts = fs
            .readFileSync("/proc/mounts", "utf8")
            .split("\n")
            .map((line) => line.split(" ")[1])
            .filter((m) => m?.startsWith(dir))
            .reverse();
        for (const m of mounts) run("umount", ["-l", m]);
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("a second run reuses the cached archives: the same paths, keyed by image ID", function () {
        const again = buildImages();
        log(`images.sh, cached: ${again.seconds.toFixed(1)}s`);
        assert.deepStrictEqual(again.archives, archives);
    });

    it("ctr images import names them as the manifests and the node's sandbox_image do", function () {
        for (const archive of archives) {
            const r = ctr("images", "import", archive);
            assert.strictEqual(r.status, 0, `import ${archive}: ${r.stderr}`);
        }
        const names = ctr("images", "ls", "-q").stdout.trim().split("\n").sort();
        assert.deepStrictEqual(names, [...VERSIONS.map(consulImage), PAUSE].sort());
    });

    for (const version of VERSIONS) {
        it(`hashicorp/consul:${version} runs its Consul binary`, function () {
            const r = runIn(consulImage(version), `version-${version.replace(/\./g, "-")}`, "consul", "version");
            assert.strictEqual(r.status, 0, r.stderr);
            assert.strictEqual(r.stdout.split("\n")[0], `Consul v${version}`);
        });
    }

    it("has sh, curl, jq and the consul user (uid 100, gid 1000) the manifests' scripts use", function () {
        const script = "curl --version; jq --version; id consul; stat -c '%a %u' /tmp; echo \"$PATH\"";
        const r = runIn(consulImage("1.16.3"), "tools", "/bin/sh", "-ec", script);
        assert.strictEqual(r.status, 0, r.stderr);
        const lines = r.stdout.trim().split("\n");
        assert.match(lines[0], /^curl 7\.\d+\.\d+ .*OpenSSL/);
        assert.ok(lines.includes("jq-1.6"), r.stdout);
        assert.ok(lines.includes("uid=100(consul) gid=1000(consul) groups=1000(consul)"), r.stdout);
        assert.ok(lines.includes("1777 0"), `/tmp is not root's 1777:\n${r.stdout}`);
        assert.strictEqual(lines.at(-1), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    });

    it("the readiness probe's script (curl --cacert over HTTPS) passes against an agent run as consul", function () {
        const ca = "/tmp/consul-agent-ca.pem";
        const tls = {
            ports: { https: 8501, grpc: -1, grpc_tls: 8503 },
            tls: {
                defaults: {
                    ca_file: ca,
                    cert_file: "/tmp/dc1-server-consul-0.pem",
                    key_file: "/tmp/dc1-server-consul-0-key.pem",
                },
            },
        };
        const probe = leaderProbeScript(8501, ca);
        const script = [
            "set -eu",
            "cd /tmp",
            "consul tls ca create >/dev/null",
            "consul tls cert create -server -dc dc1 >/dev/null",
            `printf '%s' '${JSON.stringify(tls)}' >/tmp/tls.json`,
            "consul agent -dev -config-file=/tmp/tls.json -data-dir=/tmp/data >/tmp/agent.log 2>&1 &",
            "i=0",
            `until sh -ec "$PROBE" 2>/dev/null; do i=$((i + 1)); [ "$i" -lt 60 ] || { cat /tmp/agent.log; exit 1; }; sleep 1; done`,
            `curl -sS --cacert ${ca} https://127.0.0.1:8501/v1/agent/self | jq -r .Config.Version`,
            "id -u",
            "kill %1",
        ].join("\n");
        // A fresh network namespace has lo down; the agent then runs as the consul user.
        const r = runIn(
            consulImage("1.16.3"),
            "probe",
            "/bin/sh",
            "-ec",
            'ip link set lo up; export PROBE="$2"; exec su -s /bin/sh -c "$1" consul',
            "sh",
            script,
            probe,
        );
        assert.strictEqual(r.status, 0, `${r.stdout}\n${r.stderr}`);
        assert.deepStrictEqual(r.stdout.trim().split("\n").slice(-2), ["1.16.3", "100"]);
    });

    it("pause runs as 65535, says its version, and exits 0 on SIGTERM and on SIGINT", async function () {
        const v = runIn(PAUSE, "pause-v", "/pause", "-v");
        assert.strictEqual(v.stdout.trim(), "pause.c v3.10-k8s-v1.34.4");
        for (const signal of ["SIGTERM", "SIGINT"]) {
            const id = `pause-${signal.toLowerCase()}`;
            const child = childProcess.spawn(
                "ctr",
                ["--address", path.join(dir, "containerd.sock"), "-n", "k8s.io", "run", "--rm", PAUSE, id],
                { env, stdio: ["ignore", "pipe", "pipe"] },
            );
            let output = "";
            child.stderr.on("data", (d: Buffer) => (output += d.toString()));
            const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
            let pid = "";
            for (let i = 0; i < 50 && !pid; i++) {
                await sleep(200);
                pid = ctr("task", "ls").stdout.match(new RegExp(`^${id}\\s+(\\d+)\\s+RUNNING`, "m"))?.[1] ?? "";
            }
            assert.ok(pid, `${id} did not start: ${output}`);
            assert.match(fs.readFileSync(`/proc/${pid}/status`, "utf8"), /^Uid:\s+65535\s+65535/m);
            assert.strictEqual(ctr("task", "kill", "-s", signal, id).status, 0);
            assert.strictEqual(await exited, 0, output);
            assert.match(output, /Shutting down, got signal: (Terminated|Interrupt)/);
        }
    });
});
