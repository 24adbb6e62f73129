// The snapshot config keys (components/config/snapshot.ts): off by default, a full set read with the
// secret key as a Pulumi secret, and each wrong value one message naming the key, the value and the
// fix; the secret key is never shown.

import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseSettings, Settings } from "../../components/config";
import { timeSpanSeconds } from "../../components/config/snapshot";
import { SNAPSHOT_CONFIG as ON, SNAPSHOT_S3_SECRET as SECRET, withPinnedKeys } from "../vm/fixtures";

const SECRET_KEYS = new Set(["snapshotS3SecretAccessKey"]);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "consul-snapshot-test-"));
const keyFile = path.join(tmp, "id");
fs.writeFileSync(keyFile, "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n");
const vmBase = withPinnedKeys({
    topology: "vm",
    serverHosts: JSON.stringify(["s1=10.0.0.11", "s2=10.0.0.12", "s3=10.0.0.13"]),
    clientHosts: JSON.stringify(["c1=10.0.0.21"]),
    sshPrivateKeyPath: keyFile,
});

function problemsOf(raw: Record<string, string>, secretKeys: ReadonlySet<string> = SECRET_KEYS): string[] {
    try {
        parseSettings(raw, "consul", "prod", { secretKeys });
    } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return [...err.problems];
    }
    return [];
}

describe("snapshot config", () => {
    it("is off by default: no snapshot settings, and the VM settings keep their shape", () => {
        const settings = parseSettings(vmBase, "consul", "prod", { secretKeys: new Set() });
        assert.ok(!("snapshot" in (settings.vm as object)));
    });

    it("reads a full set, the secret key as a Pulumi secret", async () => {
        const settings = parseSettings({ ...vmBase, ...ON }, "consul", "prod", { secretKeys: SECRET_KEYS });
        const snapshot = (settings.vm as NonNullable<Settings["vm"]>).snapshot;
        assert.ok(snapshot);
        assert.deepStrictEqual(
            { ...snapshot, s3: { ...snapshot.s3, secretAccessKey: undefined } },
            {
                interval: "1h",
                retain: 3,
                s3: {
                    endpoint: "https://s3.eu-west-1.amazonaws.com",
                    bucket: "acme-consul-backups",
                    region: "eu-west-1",
                    accessKeyId: "AKIAEXAMPLE0000001",
                    secretAccessKey: undefined,
                },
            },
        );
        assert.ok(await pulumi.isSecret(snapshot.s3.secretAccessKey));
    });

    it("reads systemd time spans, refusing bare numbers and unknown units", () => {
        assert.strictEqual(timeSpanSeconds("1h"), 3600);
        assert.strictEqual(timeSpanSeconds("1d 12h"), 129600);
        assert.strictEqual(timeSpanSeconds("30min"), 1800);
        for (const bad of ["60", "1 hour later", "1.5h", "h", "", "1y", "-1h"]) {
            assert.strictEqual(timeSpanSeconds(bad), undefined, bad);
        }
    });

    const cases: [string, Record<string, string>, string, string, RegExp][] = [
        ["not a time span", { snapshotInterval: "hourly" }, "snapshotInterval", '"hourly"', /systemd time span/],
        ["under a minute", { snapshotInterval: "30s" }, "snapshotInterval", '"30s"', /use 1min or more/],
        ["retain 0", { snapshotRetain: "0" }, "snapshotRetain", "0", /from 1 to 10000/],
        [
            "endpoint not a URL",
            { snapshotS3Endpoint: "s3.example.com" },
            "snapshotS3Endpoint",
            '"s3.example.com"',
            /https URL/,
        ],
        [
            "endpoint ftp",
            { snapshotS3Endpoint: "ftp://s3.example.com" },
            "snapshotS3Endpoint",
            '"ftp://s3.example.com"',
            /https URL/,
        ],
        [
            "endpoint plain http",
            { snapshotS3Endpoint: "http://10.0.0.5:9000" },
            "snapshotS3Endpoint",
            '"http://10.0.0.5:9000"',
            /snapshotS3AllowHttp to true/,
        ],
        ["bucket name", { snapshotS3Bucket: "Acme_Backups" }, "snapshotS3Bucket", '"Acme_Backups"', /S3 bucket name/],
        ["region", { snapshotS3Region: "EU West" }, "snapshotS3Region", '"EU West"', /us-east-1/],
        ["access key id missing", { snapshotS3AccessKeyId: "" }, "snapshotS3AccessKeyId", '""', /access key ID/],
        [
            "secret key missing",
            { snapshotS3SecretAccessKey: "" },
            "snapshotS3SecretAccessKey",
            "[secret]",
            /--secret snapshotS3SecretAccessKey/,
        ],
    ];
    for (const [what, change, key, value, fix] of cases) {
        it(`refuses ${what} with one message naming the key, the value and the fix`, () => {
            const problems = problemsOf({ ...vmBase, ...ON, ...change });
            assert.strictEqual(problems.length, 1, problems.join("\n"));
            assert.ok(problems[0].startsWith(`consul:${key} = ${value}: `), problems[0]);
            assert.match(problems[0], fix);
        });
    }

    it("refuses a secret key not set with --secret, without showing it", () => {
        const problems = problemsOf({ ...vmBase, ...ON }, new Set());
        assert.deepStrictEqual(problems.length, 1, problems.join("\n"));
        assert.match(
            problems[0],
            /^consul:snapshotS3SecretAccessKey = "\[not shown\]": is stored in plain text.*pulumi config set --secret snapshotS3SecretAccessKey/,
        );
        assert.ok(!problems[0].includes(SECRET));
    });

    it("refuses snapshot keys while snapshotInterval is empty, naming them", () => {
        const { snapshotInterval, ...rest } = ON;
        assert.strictEqual(snapshotInterval, "1h");
        const problems = problemsOf({ ...vmBase, ...rest });
        assert.strictEqual(problems.length, 1, problems.join("\n"));
        assert.match(
            problems[0],
            /^consul:snapshotInterval = "": is empty, so snapshots are off, but consul:snapshotRetain, consul:snapshotS3Endpoint, .*consul:snapshotS3SecretAccessKey are set; set snapshotInterval \(e\.g\. 1h\)/,
        );
        assert.ok(!problems[0].includes(SECRET));
    });

    it("refuses snapshots on kubernetes (VM servers only so far)", () => {
        const problems = problemsOf({ topology: "kubernetes", ...ON });
        assert.deepStrictEqual(problems, [
            'consul:snapshotInterval = "1h": snapshots are only taken on VM servers (topology vm or hybrid) so far; remove it on kubernetes.',
        ]);
    });
});
