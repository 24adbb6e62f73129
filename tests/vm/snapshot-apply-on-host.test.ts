// The apply and remove scripts with snapshot files in the bundle, on a fake host (./fake-host.ts):
// a host without rclone is refused before anything changes; the files land root-only and the timer
// is enabled and (re)started; a re-run only makes sure it runs; a bundle without them (snapshots
// turned off) stops the timer and removes its files; removing the node removes them too.

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Settings, SnapshotSettings } from "../../components/config";
import { NodeFile, renderBundle, sha256Hex } from "../../components/vm/bundle";
import { nodeFiles, snapshotFiles } from "../../components/vm";
import { applyScript, removeScript } from "../../components/vm/scripts";
import { FakeHost, Run } from "./fake-host";
import { sampleMaterial, sampleVmSettings } from "./fixtures";
import { applyBase, removeBase } from "./script-cases";

const S3_SECRET = "s3-Secret-Access-Key-for-apply";

describe("apply and remove with snapshots on a fake host", function () {
    this.timeout(60_000);
    const settings = sampleVmSettings();
    const vm = settings.vm as NonNullable<Settings["vm"]>;
    const material = sampleMaterial();
    const snapshot: SnapshotSettings = {
        interval: "1h",
        retain: 3,
        s3: {
            endpoint: "https://s3.example.com",
            bucket: "backups",
            region: "us-east-1",
            accessKeyId: "AKIAEXAMPLE",
            secretAccessKey: pulumi.secret(S3_SECRET),
        },
    };
    let host: FakeHost;
    beforeEach(() => {
        host = new FakeHost();
        host.respond("/v1/status/leader", '"10.0.0.11:8300"');
        host.respond("/v1/connect/ca/roots", "-----BEGIN CERTIFICATE-----\nR\n-----END CERTIFICATE-----\n");
    });
    afterEach(() => host.remove());

    const rebase = (files: NodeFile[]) => files.map((f) => ({ ...f, path: host.file(f.path) }));
    const agentFiles = () => rebase(nodeFiles(settings, "client", vm.clients[0], vm.servers, material));
    const withSnapshots = () => [
        ...agentFiles(),
        ...rebase(
            snapshotFiles(vm.clients[0], {
                snapshot,
                datacenter: "dc1",
                httpsPort: 8501,
                waitSeconds: 5,
                secretAccessKey: S3_SECRET,
                snapshotToken: String(material.agentToken),
            }),
        ),
    ];
    const apply = (files: NodeFile[]): Run => {
        const bundle = renderBundle(files);
        const script = applyScript(
            {
                ...applyBase,
                nodeName: "c1",
                role: "client",
                installMode: "preinstalled",
                serverApiUrls: ["https://10.0.0.11:8501"],
                waitSeconds: 5,
                bundleSha256: sha256Hex(bundle),
            },
            host.host,
        );
        return host.run(script, bundle);
    };
    const rclone = () =>
        fs.writeFileSync(path.join(host.host.toolPath, "rclone"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const systemctl = (run: Run) => run.calls.filter((c) => c.startsWith("systemctl ") && c.includes("snapshot"));
    const ok = (run: Run) => assert.strictEqual(run.status, 0, run.stderr);
    const snapshotPaths = () => [
        host.paths.snapshotBin,
        host.paths.snapshotRcloneConfig,
        host.paths.snapshotService,
        host.paths.snapshotTimer,
        host.paths.snapshotTokenFile,
    ];

    it("refuses a host without rclone before anything changes", () => {
        const before = host.tree();
        const run = apply(withSnapshots());
        assert.strictEqual(run.status, 1);
        assert.strictEqual(
            run.stderr,
            "c1 preflight: FAILED: rclone is not installed; install it (e.g. apt-get install rclone) and re-run pulumi up\n",
        );
        assert.deepStrictEqual(host.tree(), before);
    });

    it("installs the files root-only, then enables and starts the timer once the agent is healthy", () => {
        rclone();
        const run = apply(withSnapshots());
        ok(run);
        assert.deepStrictEqual(run.stdout.split("\n").slice(-3), [
            "c1 wait: agent running, leader 10.0.0.11:8300",
            "c1 snapshots: consul-snapshot.timer started",
            "",
        ]);
        assert.deepStrictEqual(systemctl(run), [
            "systemctl enable --quiet consul-snapshot.timer",
            "systemctl restart consul-snapshot.timer",
        ]);
        assert.deepStrictEqual(
            snapshotPaths().map((p) => (fs.statSync(p).mode & 0o777).toString(8)),
            ["700", "600", "644", "644", "600"],
        );
        assert.ok(fs.readFileSync(host.paths.snapshotRcloneConfig, "utf8").includes(S3_SECRET));
        assert.ok(!(run.stdout + run.stderr + run.calls.join("\n")).includes(S3_SECRET), "the S3 secret was printed");

        // The same bundle again: only makes sure the timer is enabled and running.
        const again = apply(withSnapshots());
        ok(again);
        assert.deepStrictEqual(systemctl(again), ["systemctl enable --quiet --now consul-snapshot.timer"]);
        assert.ok(!again.stdout.includes("snapshots:"), again.stdout);
    });

    it("a bundle without them (snapshots off) stops the timer and removes its files, local snapshots kept", () => {
        rclone();
        ok(apply(withSnapshots()));
        fs.mkdirSync(host.paths.snapshotDir, { recursive: true });
        fs.writeFileSync(path.join(host.paths.snapshotDir, "consul-20250101T000000Z.snap"), "x");
        const run = apply(agentFiles());
        ok(run);
        assert.strictEqual(
            run.stdout.split("\n").slice(-2)[0],
            `c1 snapshots: snapshots off: consul-snapshot.timer and its files removed (local snapshots kept in ${host.paths.snapshotDir})`,
        );
        assert.deepStrictEqual(systemctl(run), ["systemctl disable --quiet --now consul-snapshot.timer"]);
        assert.deepStrictEqual(
            snapshotPaths().filter((p) => fs.existsSync(p)),
            [],
        );
        assert.deepStrictEqual(fs.readdirSync(host.paths.snapshotDir), ["consul-20250101T000000Z.snap"]);
        // Off and never on: nothing is said or done about snapshots.
        const quiet = apply(agentFiles());
        ok(quiet);
        assert.deepStrictEqual(systemctl(quiet), []);
        assert.ok(!quiet.stdout.includes("snapshots"));
    });

    it("removing the node stops the timer and removes its units, script and local snapshots", () => {
        rclone();
        ok(apply(withSnapshots()));
        fs.mkdirSync(host.paths.snapshotDir, { recursive: true });
        fs.writeFileSync(path.join(host.paths.snapshotDir, "consul-20250101T000000Z.snap"), "x");
        host.unset("active");
        const run = host.run(
            removeScript({ ...removeBase, nodeName: "c1", ownerId: "client-c1", role: "client" }, host.host),
        );
        ok(run);
        assert.ok(run.calls.includes("systemctl disable --quiet --now consul-snapshot.timer"), run.calls.join("\n"));
        assert.deepStrictEqual(
            [...snapshotPaths(), host.paths.snapshotDir].filter((p) => fs.existsSync(p)),
            [],
        );
    });
});
