// The snapshot script (components/vm/scripts/snapshot.sh, as snapshotScript renders it) run on a
// fake host (./fake-host.ts) with a stub consul (snapshot save/inspect/restore on files), a stub
// rclone whose bucket is a directory, and the stub curl answering the local agent: only the leader
// saves, the snapshot is inspected before it is uploaded, retention holds here and in the bucket,
// and no secret reaches an argument or the output. The real-host suite (tests/e2e/snapshot.e2e.ts)
// is the word on Consul, rclone and S3.

import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { snapshotScript } from "../../components/vm/scripts";
import { FakeHost, Run } from "./fake-host";

const SNAPSHOT_TOKEN = crypto.randomUUID();
const MANAGEMENT_TOKEN = crypto.randomUUID();
const S3_SECRET = "s3-secret-" + crypto.randomBytes(8).toString("hex");
const REMOTE = "consul-snapshots:bucket/dc1";
const raft = (leader: string) =>
    JSON.stringify({
        Servers: ["s1", "s2", "s3"].map((n, i) => ({
            ID: `id-${n}`,
            Node: n,
            Address: `10.0.0.1${i + 1}:8300`,
            Leader: n === leader,
            Voter: true,
        })),
        Index: 7,
    });
const NAME = /^consul-\d{8}T\d{6}Z\.snap$/;

describe("the snapshot script on a fake host", function () {
    this.timeout(60_000);
    let host: FakeHost;
    let bucket: string;
    const script = (retain = 2, acl = true) =>
        snapshotScript(
            { nodeName: "s1", httpsPort: 8501, aclEnabled: acl, remote: REMOTE, retain, waitSeconds: 5 },
            host.host,
        );
    const local = () => host.paths.snapshotDir;
    const listing = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
    const ok = (run: Run) => assert.strictEqual(run.status, 0, `${run.stdout}${run.stderr}`);
    const noSecrets = (run: Run) => {
        const seen = [run.stdout, run.stderr, ...run.calls, ...run.requests.flatMap((r) => r.argv)].join("\n");
        for (const s of [SNAPSHOT_TOKEN, MANAGEMENT_TOKEN, S3_SECRET])
            assert.ok(!seen.includes(s), "a secret was printed");
    };

    beforeEach(() => {
        host = new FakeHost();
        const bin = host.host.toolPath;
        bucket = path.join(host.root, "fake-bucket");
        fs.mkdirSync(path.join(bucket, "dc1"), { recursive: true });
        const log = 'printf \'%s\\n\' "${0##*/} $*" >> "$LOG"\n';
        const stub = (name: string, body: string) =>
            fs.writeFileSync(
                path.join(bin, name),
                `#!/bin/sh\nLOG='${host.root}/fake-state/calls.log'\n${log}${body}`,
                {
                    mode: 0o755,
                },
            );
        fs.symlinkSync("/usr/bin/sort", path.join(bin, "sort"));
        // The bucket is a directory; `remote:bucket/dc1/x` is <bucket>/dc1/x. The config is only named.
        stub(
            "rclone",
            [
                'while [ $# -gt 0 ]; do case "$1" in --config | --contimeout | --timeout | --retries | --low-level-retries) shift 2 ;; *) break ;; esac; done',
                `B='${bucket}'; cmd=$1; shift`,
                'at() { printf "%s/%s" "$B" "${1#*:bucket/}"; }',
                `[ ! -e '${host.root}/fake-state/rclone-fails' ] || { echo "Failed to copy: connection refused" >&2; exit 1; }`,
                'case "$cmd" in',
                '    lsf) /bin/ls -1 "$(at "$2")" ;;',
                '    copyto) case "$2" in *:*) cp "$1" "$(at "$2")" ;; *) cp "$(at "$1")" "$2" ;; esac ;;',
                '    deletefile) rm "$(at "$1")" ;;',
                "    *) exit 3 ;;",
                "esac",
                "",
            ].join("\n"),
        );
        stub(
            "consul",
            [
                `printf 'consul-env %s\\n' "$CONSUL_HTTP_TOKEN_FILE" >> "$LOG"`,
                'case "$2" in',
                `    save) n=$(/bin/ls '${bucket}/dc1' | wc -l); printf 'SNAP %s\\n' "$n" > "$3"; echo "Saved and verified snapshot to index 4$n" ;;`,
                // As Consul's: the header, then a table of record types, which has an "Index" row too.
                "    inspect) grep -q '^SNAP' \"$3\" || { echo 'Error verifying snapshot file: unexpected EOF' >&2; exit 1; }",
                '        printf \' ID           2-42-1\\n Size         %s\\n Index        42\\n Term         2\\n\\n Type   Count  Size\\n Index  23     1.1KB\\n\' "$(wc -c < "$3")" ;;',
                "    restore) echo 'Restored snapshot' ;;",
                "esac",
                "",
            ].join("\n"),
        );
        // The scripts run the agent's CLI by its path (BIN), as installed.
        fs.symlinkSync(path.join(bin, "consul"), host.paths.binary);
        fs.mkdirSync(path.dirname(host.paths.snapshotTokenFile), { recursive: true });
        fs.writeFileSync(host.paths.snapshotTokenFile, SNAPSHOT_TOKEN + "\n", { mode: 0o600 });
        fs.writeFileSync(host.paths.managementTokenFile, MANAGEMENT_TOKEN + "\n", { mode: 0o600 });
        fs.writeFileSync(host.paths.snapshotRcloneConfig, `secret_access_key = ${S3_SECRET}\n`, { mode: 0o600 });
    });
    afterEach(() => host.remove());

    it("a follower's run exits at once: no save, no upload", () => {
        host.respond("/v1/operator/raft/configuration", raft("s2"), { token: SNAPSHOT_TOKEN });
        const run = host.run(script(), "", ["save"]);
        ok(run);
        assert.strictEqual(run.stdout, "s1 leader: not the Raft leader, nothing to do\n");
        assert.deepStrictEqual(
            run.calls.filter((c) => /^(consul|rclone) /.test(c)),
            [],
        );
        assert.deepStrictEqual(listing(local()), []);
    });

    it("the leader saves with the snapshot token, inspects, uploads and logs one line with size and times", () => {
        host.respond("/v1/operator/raft/configuration", raft("s1"), { token: SNAPSHOT_TOKEN });
        const run = host.run(script(), "", ["save"]);
        ok(run);
        const [name] = listing(path.join(bucket, "dc1"));
        assert.match(name, NAME);
        assert.deepStrictEqual(listing(local()), [name]);
        assert.match(
            run.stdout,
            new RegExp(
                `^s1 save: ${name.replace(/\./g, "\\.")}: 7 bytes, Raft index 42, saved in \\d+ ms, uploaded in \\d+ ms to ${REMOTE}; kept the newest 2 here and there \\(pruned 0 here, 0 there\\)\\n$`,
            ),
        );
        assert.strictEqual(fs.statSync(local()).mode & 0o777, 0o700);
        // The CLI read the snapshot token from its file; rclone got the config's path, never the key.
        assert.ok(run.calls.includes(`consul-env ${host.paths.snapshotTokenFile}`));
        const rclone = run.calls.filter((c) => c.startsWith("rclone "));
        assert.ok(rclone.every((c) => c.includes(`--config ${host.paths.snapshotRcloneConfig}`)));
        assert.deepStrictEqual(
            rclone.map((c) => c.split(" ")[11]),
            ["copyto", "lsf"],
        );
        noSecrets(run);
        assert.deepStrictEqual(
            host.tree().filter((p) => /^\/tmp\/./.test(p)),
            [],
        );
    });

    it("keeps the newest RETAIN here and in the bucket", () => {
        host.respond("/v1/operator/raft/configuration", raft("s1"), { token: SNAPSHOT_TOKEN });
        const old = ["consul-20250101T000000Z.snap", "consul-20250102T000000Z.snap", "consul-20250103T000000Z.snap"];
        fs.mkdirSync(local(), { recursive: true });
        for (const n of old) {
            fs.writeFileSync(path.join(local(), n), "SNAP old\n");
            fs.writeFileSync(path.join(bucket, "dc1", n), "SNAP old\n");
        }
        fs.writeFileSync(path.join(bucket, "dc1", "not-ours.txt"), "x");
        const run = host.run(script(2), "", ["save"]);
        ok(run);
        const [newest] = listing(local()).filter((n) => !old.includes(n));
        assert.deepStrictEqual(listing(local()), [old[2], newest]);
        assert.deepStrictEqual(listing(path.join(bucket, "dc1")), [old[2], newest, "not-ours.txt"]);
        assert.match(run.stdout, /\(pruned 2 here, 2 there\)\n$/);
    });

    it("refuses a snapshot inspect rejects: nothing kept, nothing uploaded", () => {
        host.respond("/v1/operator/raft/configuration", raft("s1"), { token: SNAPSHOT_TOKEN });
        const consul = path.join(host.host.toolPath, "consul");
        fs.writeFileSync(consul, fs.readFileSync(consul, "utf8").replace("printf 'SNAP %s", "printf 'JUNK %s"));
        const run = host.run(script(), "", ["save"]);
        assert.strictEqual(run.status, 1);
        assert.match(
            run.stderr,
            /^s1 inspect: FAILED: consul snapshot inspect rejects \.consul-\S+\.snap\.partial: Error verifying/m,
        );
        assert.deepStrictEqual(listing(local()), []);
        assert.deepStrictEqual(listing(path.join(bucket, "dc1")), []);
    });

    it("a failed upload fails the run (the unit shows failed) and keeps the local copy", () => {
        host.respond("/v1/operator/raft/configuration", raft("s1"), { token: SNAPSHOT_TOKEN });
        host.set("rclone-fails");
        const run = host.run(script(), "", ["save"]);
        assert.strictEqual(run.status, 1);
        assert.match(
            run.stderr,
            new RegExp(
                `^s1 upload: FAILED: rclone could not copy consul-\\S+ to ${REMOTE} \\(Failed to copy: connection refused\\); it is kept in `,
                "m",
            ),
        );
        assert.strictEqual(listing(local()).length, 1);
        noSecrets(run);
    });

    it("without ACLs, no token file is given to the agent or the CLI", () => {
        host.respond("/v1/operator/raft/configuration", raft("s1"));
        const run = host.run(script(2, false), "", ["save"]);
        ok(run);
        assert.ok(run.calls.includes("consul-env "));
        assert.strictEqual(run.requests[0].config, "");
    });

    it("restore latest on a new cluster: bootstraps ACLs with the management token, then restores the newest", () => {
        for (const n of ["consul-20250101T000000Z.snap", "consul-20250102T000000Z.snap"]) {
            fs.writeFileSync(path.join(bucket, "dc1", n), `SNAP ${n}\n`);
        }
        host.respond("/v1/status/leader", '"10.0.0.12:8300"');
        // Not bootstrapped: the management token is unknown until PUT /v1/acl/bootstrap.
        host.respondWith("/v1/acl/token/self", `[ -e "$S/bootstrapped" ] || exit 22\necho '{"AccessorID":"a"}'\n`, {
            token: MANAGEMENT_TOKEN,
        });
        host.respondWith("/v1/acl/bootstrap", ': > "$S/bootstrapped"\necho \'{"AccessorID":"a"}\'\n', {
            method: "PUT",
        });
        const run = host.run(script(), "", ["restore", "latest"]);
        ok(run);
        assert.match(
            run.stdout,
            /^s1 restore: the cluster is new: ACL system bootstrapped with the management token\ns1 restore: consul-20250102T000000Z\.snap: 34 bytes, Raft index 42, fetched in \d+ ms, restored in \d+ ms\n$/,
        );
        const bootstrap = run.requests.find((r) => r.url.endsWith("/v1/acl/bootstrap"));
        assert.deepStrictEqual(JSON.parse(bootstrap?.body ?? "{}"), { BootstrapSecret: MANAGEMENT_TOKEN });
        assert.ok(run.calls.includes(`consul-env ${host.paths.managementTokenFile}`));
        assert.ok(run.calls.some((c) => / snapshot restore .*consul-20250102T000000Z\.snap$/.test(c)));
        noSecrets(run);
        assert.deepStrictEqual(
            host.tree().filter((p) => /^\/tmp\/./.test(p)),
            [],
        );
    });

    it("restore refuses a name that is not in the bucket, and list shows what is", () => {
        fs.writeFileSync(path.join(bucket, "dc1", "consul-20250101T000000Z.snap"), "SNAP\n");
        const list = host.run(script(), "", ["list"]);
        ok(list);
        assert.strictEqual(list.stdout, "consul-20250101T000000Z.snap\n");
        const run = host.run(script(), "", ["restore", "consul-20990101T000000Z.snap"]);
        assert.strictEqual(run.status, 1);
        assert.match(
            run.stderr,
            /^s1 restore: FAILED: consul-20990101T000000Z\.snap is not in consul-snapshots:bucket\/dc1; consul-snapshot list shows what is$/m,
        );
        const usage = host.run(script(), "", []);
        assert.match(usage.stderr, /FAILED: usage: consul-snapshot save \| list \| restore NAME\|latest/);
    });
});
