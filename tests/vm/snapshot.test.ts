// Snapshots in the VM topology: the rendered service, timer and rclone config, a server's snapshot
// files, and what the program deploys with and without them: off, every command and bundle is as
// before; on, servers get five more files, one more command (the snapshot policy and token), and no
// secret reaches a plain input. (The config keys: tests/config/snapshot.test.ts.)

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type { SnapshotSettings } from "../../components/config";
import { snapshotPolicyBody, tokenFromSeed } from "../../components/security";
import { PATHS } from "../../components/vm/paths";
import {
    rcloneConfig,
    renderRcloneConfig,
    snapshotFiles,
    snapshotServiceUnit,
    snapshotTimerUnit,
} from "../../components/vm/snapshot";
import { renderUnit } from "../../components/vm/systemd";
import { COMMAND_TYPE, diffCommands } from "../command-diff";
import {
    ConsulMocks,
    containsSecret,
    EvaluatedStack,
    evaluateProgram,
    RecordedResource,
    withOperatorHome,
} from "../mocks";
import { prodStackWithHosts, SNAPSHOT_CONFIG as ON, SNAPSHOT_S3_SECRET as SECRET } from "./fixtures";

/** Strings in an input that are not under a secret wrapper (the SDK's marker). */
function plainStrings(raw: unknown, out: string[] = []): string[] {
    if (typeof raw === "string") out.push(raw);
    else if (Array.isArray(raw)) raw.forEach((v) => plainStrings(v, out));
    else if (raw !== null && typeof raw === "object") {
        if ("4dabf18193072939515e22adb298388d" in raw) return out;
        Object.values(raw).forEach((v) => plainStrings(v, out));
    }
    return out;
}

describe("snapshot units and rclone config", () => {
    const snapshot: SnapshotSettings = {
        interval: "1h",
        retain: 3,
        s3: {
            endpoint: "https://s3.eu-west-1.amazonaws.com",
            bucket: "acme-consul-backups",
            region: "eu-west-1",
            accessKeyId: "AKIAEXAMPLE0000001",
            secretAccessKey: pulumi.secret(SECRET),
        },
    };

    it("the service: one root run of the script, writing only its state directory", () => {
        assert.strictEqual(
            renderUnit(snapshotServiceUnit()),
            [
                "[Unit]",
                "Description=Consul snapshot: save on the Raft leader, copy to the bucket, prune (consul-pulumi)",
                "Documentation=https://developer.hashicorp.com/consul/commands/snapshot",
                "Wants=network-online.target",
                "After=network-online.target consul.service",
                `ConditionFileNotEmpty=${PATHS.snapshotBin}`,
                `ConditionFileNotEmpty=${PATHS.snapshotRcloneConfig}`,
                "",
                "[Service]",
                "Type=oneshot",
                `ExecStart=${PATHS.snapshotBin} save`,
                "StateDirectory=consul-snapshots",
                "StateDirectoryMode=0700",
                "UMask=0077",
                "TimeoutStartSec=30min",
                "Nice=10",
                "IOSchedulingClass=idle",
                "NoNewPrivileges=yes",
                "ProtectSystem=strict",
                "ProtectHome=yes",
                "PrivateTmp=yes",
                "PrivateDevices=yes",
                "ProtectKernelTunables=yes",
                "ProtectKernelModules=yes",
                "ProtectControlGroups=yes",
                "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                "RestrictSUIDSGID=yes",
                "LockPersonality=yes",
                "",
                "[Install]",
                "",
            ].join("\n"),
        );
        assert.strictEqual(`/var/lib/consul-snapshots`, PATHS.snapshotDir);
    });

    it("the timer: one interval after it starts, then one after each run", () => {
        assert.strictEqual(
            renderUnit(snapshotTimerUnit("1h")),
            "[Unit]\nDescription=Consul snapshot every 1h (consul-pulumi)\n\n" +
                "[Timer]\nOnActiveSec=1h\nOnUnitActiveSec=1h\nAccuracySec=1s\nUnit=consul-snapshot.service\n\n" +
                "[Install]\nWantedBy=timers.target\n",
        );
    });

    it("both pass systemd-analyze verify with no warning", function () {
        this.timeout(60_000);
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "consul-snapshot-units-"));
        try {
            for (const dir of ["usr/local/bin", "usr/bin", "etc/systemd/system"]) {
                fs.mkdirSync(path.join(root, dir), { recursive: true });
            }
            fs.symlinkSync("usr/bin", path.join(root, "bin"));
            fs.symlinkSync("usr/lib", path.join(root, "lib"));
            fs.cpSync("/usr/lib/systemd/system", path.join(root, "usr/lib/systemd/system"), { recursive: true });
            fs.writeFileSync(path.join(root, PATHS.snapshotBin), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
            fs.writeFileSync(path.join(root, PATHS.snapshotService), renderUnit(snapshotServiceUnit()));
            fs.writeFileSync(path.join(root, PATHS.snapshotTimer), renderUnit(snapshotTimerUnit(snapshot.interval)));
            const r = spawnSync(
                "systemd-analyze",
                ["verify", "--man=no", `--root=${root}`, PATHS.snapshotTimer, PATHS.snapshotService],
                { encoding: "utf8" },
            );
            assert.strictEqual(r.status, 0, `${r.stdout}${r.stderr}`);
            assert.strictEqual(`${r.stdout}${r.stderr}`.trim(), "");
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("the rclone config: an S3 remote, path-style, the bucket not created; no line break gets in", () => {
        assert.strictEqual(
            rcloneConfig(snapshot, SECRET),
            "[consul-snapshots]\ntype = s3\nprovider = Other\nenv_auth = false\naccess_key_id = AKIAEXAMPLE0000001\n" +
                `secret_access_key = ${SECRET}\nregion = eu-west-1\nendpoint = https://s3.eu-west-1.amazonaws.com\n` +
                "force_path_style = true\nno_check_bucket = true\n",
        );
        assert.throws(() => rcloneConfig(snapshot, "a\nendpoint = http://evil"), /line break/);
        assert.throws(() => renderRcloneConfig({ "a]b": {} }), /bad remote name/);
    });

    it("a server's snapshot files: script, rclone config and token root-only, units readable", () => {
        const args = { snapshot, datacenter: "dc1", httpsPort: 8501, waitSeconds: 300, secretAccessKey: SECRET };
        const host = { name: "s1", address: "10.0.0.11", addressIsIp: true, sshPort: 22 };
        const files = snapshotFiles(host, { ...args, snapshotToken: "tok-1" });
        assert.deepStrictEqual(
            files.map((f) => `${f.path} ${f.mode} ${f.owner}:${f.group}`),
            [
                `${PATHS.snapshotBin} 0700 root:root`,
                `${PATHS.snapshotRcloneConfig} 0600 root:root`,
                `${PATHS.snapshotService} 0644 root:root`,
                `${PATHS.snapshotTimer} 0644 root:root`,
                `${PATHS.snapshotTokenFile} 0600 root:root`,
            ],
        );
        const script = files[0].content;
        assert.match(script, /^#!\/bin\/sh\n/);
        assert.ok(script.includes(`readonly REMOTE='consul-snapshots:acme-consul-backups/dc1'\n`));
        assert.ok(script.includes(`readonly RETAIN='3'\n`));
        assert.ok(!script.includes(SECRET) && !script.includes("tok-1"), "a secret in the script");
        // Without ACLs: no token file, and the script sends none.
        const open = snapshotFiles(host, args);
        assert.deepStrictEqual(open.length, 4);
        assert.ok(open[0].content.includes("readonly ACL='0'\n"));
    });

    it("the snapshot policy: acl write (what /v1/snapshot needs) and operator read (the leader check)", () => {
        const body = JSON.parse(snapshotPolicyBody()) as { Name: string; Rules: string };
        assert.strictEqual(body.Name, "consul-snapshots");
        assert.deepStrictEqual(JSON.parse(body.Rules), { acl: "write", operator: "read" });
    });
});

describe("snapshots in the program, under mocks", function () {
    this.timeout(120_000);
    let operator: ReturnType<typeof withOperatorHome>;
    let off: EvaluatedStack;
    let on: EvaluatedStack;
    const secretKeys = ["snapshotS3SecretAccessKey"];
    const commands = (r: EvaluatedStack) => r.mocks.ofType(COMMAND_TYPE);
    const byName = (r: EvaluatedStack) => new Map(commands(r).map((c) => [c.name, c]));
    const bundlePaths = (c: RecordedResource) =>
        String(c.inputs.stdin)
            .split("\n")
            .filter(Boolean)
            .map((l) => l.split(" ")[0]);
    before(async () => {
        operator = withOperatorHome();
        const base = prodStackWithHosts(3, 2);
        off = await evaluateProgram(base, { stack: "prod" });
        on = await evaluateProgram({ ...base, ...ON }, { stack: "prod", secretKeys });
    });
    after(() => operator.restore());

    it("off: the same resources as before, and no snapshot file in any bundle", () => {
        assert.ok(!off.mocks.resources.some((r) => /snapshot/i.test(r.name) || /Snapshot/.test(r.type)));
        for (const c of commands(off)) assert.ok(!bundlePaths(c).some((p) => /snapshot/.test(p)), c.name);
    });

    it("on: each server gets the five snapshot files, clients none; one more command, after the ACL step", () => {
        const offs = byName(off);
        // The agents' bundles (the cluster steps carry no files: the ACL steps none, the keyring steps the key).
        for (const c of commands(on).filter((c) => c.name.endsWith("-agent"))) {
            const before = offs.get(c.name);
            assert.ok(before, `${c.name} is new`);
            const added = bundlePaths(c).filter((p) => !bundlePaths(before).includes(p));
            const expected = c.name.includes("-server-")
                ? [
                      PATHS.snapshotBin,
                      PATHS.snapshotService,
                      PATHS.snapshotTimer,
                      PATHS.snapshotTokenFile,
                      PATHS.snapshotRcloneConfig,
                  ].sort()
                : [];
            assert.deepStrictEqual(added.sort(), expected, c.name);
        }
        const snapshotAcl = byName(on).get("consul-vm-snapshot-acl") as RecordedResource;
        assert.ok(snapshotAcl, "the snapshot ACL step");
        assert.ok(snapshotAcl.dependencies.some((urn) => urn.endsWith("::consul-vm-acl")));
        assert.strictEqual((snapshotAcl.inputs.connection as { host: string }).host, "10.20.0.11");
        assert.ok(String(snapshotAcl.inputs.create).includes("TOKEN_NAME='\"'\"'snapshot'\"'\"'"));
        assert.strictEqual(commands(on).length, commands(off).length + 1);
        assert.strictEqual(on.mocks.ofType("consul:index:SnapshotToken").length, 1);
    });

    it("on: the S3 secret and the snapshot token only in secret inputs", () => {
        const token = on.mocks
            .ofType("random:index/randomPassword:RandomPassword")
            .find((r) => r.name.includes("snapshot-token"));
        assert.ok(token, "the snapshot token's seed");
        const secrets = [SECRET, tokenFromSeed(String(token.state.result))];
        for (const r of on.mocks.resources) {
            for (const text of plainStrings(r.rawInputs)) {
                for (const secret of secrets) assert.ok(!text.includes(secret), `${r.type} ${r.name}: a plain input`);
            }
        }
        for (const c of commands(on).filter((c) => bundlePaths(c).includes(PATHS.snapshotRcloneConfig))) {
            assert.ok(containsSecret(c.rawInputs.stdin), `${c.name} stdin is not secret`);
        }
    });

    it("on, ACLs off: no snapshot token, no snapshot ACL step, and the script sends no token", async () => {
        const open = await evaluateProgram(
            { ...prodStackWithHosts(3, 2), ...ON, aclEnabled: "false", aclDefaultPolicy: "allow" },
            { stack: "dev", secretKeys },
        );
        assert.ok(!byName(open).has("consul-vm-snapshot-acl"));
        assert.strictEqual(open.mocks.ofType("consul:index:SnapshotToken").length, 0);
        const server = byName(open).get("consul-vm-server-consul-server-1-agent") as RecordedResource;
        assert.ok(bundlePaths(server).includes(PATHS.snapshotTimer));
        assert.ok(!bundlePaths(server).includes(PATHS.snapshotTokenFile));
    });

    it("on: a second deploy with no change runs nothing", async () => {
        const again = await evaluateProgram(
            { ...prodStackWithHosts(3, 2), ...ON },
            { stack: "prod", secretKeys, mocks: new ConsulMocks(on.mocks) },
        );
        assert.deepStrictEqual(
            diffCommands(on.mocks.resources, again.mocks.resources).filter((r) => r.op !== "none"),
            [],
        );
    });
});
