// The apply script's download path (installMode "download"), run on a fake host: a stub curl serves
// the release files from the test, and the machine's own gpgv, sha256sum and unzip check and unpack
// them, against a throw-away release key made here (its public half passed as the program passes
// a key: releaseKey(env) with CONSUL_PULUMI_TEST_RELEASE_KEY_FILE). Proves that only a zip whose
// hash is in a SHA256SUMS signed by that key is installed, and that anything else installs nothing.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { releaseKey, ReleaseKey, TEST_RELEASE_KEY_ENV } from "../../components/security/release-trust";
import { renderBundle, sha256Hex } from "../../components/vm/bundle";
import { nodeFiles } from "../../components/vm";
import { applyScript } from "../../components/vm/scripts";
import { Settings } from "../../components/config";
import { FakeHost, Run } from "./fake-host";
import { sampleMaterial, sampleVmSettings } from "./fixtures";
import { applyBase } from "./script-cases";

/** The machine's tools these tests run for real (gpg only makes the keys and signatures). */
const NEEDED = ["gpg", "gpgv", "sha256sum", "unzip"];

interface SigningKey {
    readonly home: string;
    /** As the program takes it: the binary keyring, base64, and the fingerprint. */
    readonly trust: ReleaseKey;
}

function gpg(home: string, args: readonly string[]): string {
    const r = spawnSync("gpg", ["--homedir", home, "--batch", "--pinentry-mode", "loopback", ...args], {
        encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`gpg ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
}

/** A throw-away ed25519 signing key in its own GnuPG home (as tests/e2e/release-signing.ts makes one). */
function makeKey(name: string): SigningKey {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "consul-release-key-"));
    gpg(home, ["--passphrase", "", "--quick-gen-key", `${name} <${name}@invalid>`, "ed25519", "sign", "never"]);
    const publicKeyFile = path.join(home, "release-key.asc");
    fs.writeFileSync(publicKeyFile, gpg(home, ["--armor", "--export"]));
    // Not through process.env: the other suites in this process must keep HashiCorp's key.
    return { home, trust: releaseKey({ [TEST_RELEASE_KEY_ENV]: publicKeyFile }) };
}

/** A detached binary signature of `content` (as HashiCorp's .sig). */
function sign(key: SigningKey, content: string): Buffer {
    const dir = fs.mkdtempSync(path.join(key.home, "sign-"));
    fs.writeFileSync(path.join(dir, "SHA256SUMS"), content);
    gpg(key.home, [
        "--passphrase",
        "",
        "--detach-sign",
        "--output",
        path.join(dir, "sig"),
        path.join(dir, "SHA256SUMS"),
    ]);
    return fs.readFileSync(path.join(dir, "sig"));
}

/** A zip archive of one executable file, stored (no compression), as unzip reads it. */
function zipOf(name: string, content: Buffer): Buffer {
    const crc = zlib.crc32(content);
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(10, 4); // version needed
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(content.length, 18);
    local.writeUInt32LE(content.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(10, 6);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(content.length, 20);
    central.writeUInt32LE(content.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE((0o100755 << 16) >>> 0, 38);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(1, 8);
    end.writeUInt16LE(1, 10);
    end.writeUInt32LE(central.length + nameBytes.length, 12);
    end.writeUInt32LE(local.length + nameBytes.length + content.length, 16);
    return Buffer.concat([local, nameBytes, content, central, nameBytes, end]);
}

describe("the apply script's release download, on a fake host with real gpgv, sha256sum and unzip", function () {
    this.timeout(60_000);
    const settings = sampleVmSettings();
    const vm = settings.vm as NonNullable<Settings["vm"]>;
    const material = sampleMaterial();
    const MIRROR = "https://releases.mirror.invalid";
    const VERSION = applyBase.consulVersion;
    const ARCH = os.arch() === "arm64" ? "arm64" : "amd64";
    const ZIP = `consul_${VERSION}_linux_${ARCH}.zip`;
    const SUMS = `consul_${VERSION}_SHA256SUMS`;
    const RELEASE_DIR = `/consul/${VERSION}`;
    const ROOTS = "-----BEGIN CERTIFICATE-----\nROOTS\n-----END CERTIFICATE-----\n";
    let releaseKeyPair: SigningKey;
    let otherKey: SigningKey;
    let host: FakeHost;

    before(() => {
        const missing = NEEDED.filter((tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0);
        if (missing.length > 0) {
            throw new Error(
                `these tests run the machine's own ${missing.join(", ")}, which is not installed: ` +
                    "install it (Debian: apt-get install gpg gpgv unzip coreutils) and re-run",
            );
        }
        releaseKeyPair = makeKey("consul-pulumi test releases");
        otherKey = makeKey("someone else");
    });
    after(() => {
        for (const key of [releaseKeyPair, otherKey]) {
            if (!key) continue;
            spawnSync("gpgconf", ["--homedir", key.home, "--kill", "gpg-agent"]);
            fs.rmSync(key.home, { recursive: true, force: true });
        }
    });
    beforeEach(() => {
        host = new FakeHost({ realTools: ["gpgv", "unzip"] });
        host.respond("/v1/status/leader", '"10.0.0.11:8300"');
        host.respond("/v1/connect/ca/roots", ROOTS);
    });
    afterEach(() => host.remove());

    /** The consul a release zip carries: a wrapper of the fake host's stub, labelled. */
    const consulBuild = (label: string) =>
        Buffer.from(`#!/bin/sh\n# consul ${VERSION} (${label})\nexec '${host.host.toolPath}/consul' "$@"\n`);
    const hex = (b: Buffer | string) => crypto.createHash("sha256").update(b).digest("hex");
    /** A SHA256SUMS as HashiCorp's lists a release: one line per zip, this host's among them. */
    const sums = (zip: Buffer) =>
        `${hex("another platform")}  consul_${VERSION}_darwin_arm64.zip\n${hex(zip)}  ${ZIP}\n`;
    /** What the mirror serves. */
    const serve = (files: { zip: Buffer; sums: string; sig: Buffer }) => {
        host.respond(`${RELEASE_DIR}/${ZIP}`, files.zip);
        host.respond(`${RELEASE_DIR}/${SUMS}`, files.sums);
        host.respond(`${RELEASE_DIR}/${SUMS}.sig`, files.sig);
    };
    /** A first apply of a client that downloads its binary. */
    const apply = (): Run => {
        const bundle = renderBundle(
            nodeFiles(settings, "client", vm.clients[0], vm.servers, material).map((f) => ({
                ...f,
                path: host.file(f.path),
            })),
        );
        const script = applyScript(
            {
                ...applyBase,
                nodeName: "c1",
                role: "client",
                installMode: "download",
                releaseMirrorUrl: MIRROR,
                releaseKey: releaseKeyPair.trust,
                serverApiUrls: ["https://10.0.0.11:8501"],
                waitSeconds: 5,
                bundleSha256: sha256Hex(bundle),
            },
            host.host,
        );
        return host.run(script, bundle);
    };
    /** A failed install: the script's one FAILED line, and not a file changed on the host. */
    const refused = (expected: RegExp) => {
        const before = host.tree();
        const run = apply();
        assert.strictEqual(run.status, 1, run.stdout);
        assert.match(run.stderr, expected);
        assert.strictEqual(run.stderr.split("\n").length, 2, run.stderr);
        assert.strictEqual(run.stdout, "c1 preflight: ok\n");
        assert.deepStrictEqual(host.tree(), before, "nothing staged, installed or left in /tmp");
        assert.ok(!fs.existsSync(host.paths.binary) && !fs.existsSync(`${host.paths.binary}.new`));
        assert.ok(!run.calls.some((c) => /^(systemctl|consul) /.test(c)), run.calls.join("\n"));
        return run;
    };

    it("installs the consul from a zip whose SHA-256 is in a SHA256SUMS signed by the release key", () => {
        const build = consulBuild("release");
        const zip = zipOf("consul", build);
        const list = sums(zip);
        serve({ zip, sums: list, sig: sign(releaseKeyPair, list) });
        const run = apply();
        assert.strictEqual(run.status, 0, run.stderr);
        assert.strictEqual(run.stderr, "");
        assert.deepStrictEqual(run.stdout.split("\n").slice(0, 3), [
            "c1 preflight: ok",
            `c1 install: downloaded consul ${VERSION} (${ARCH}), signature by ${releaseKeyPair.trust.fingerprint} and SHA-256 verified`,
            "c1 layout: ok",
        ]);
        assert.match(run.stdout, /\nc1 wait: agent running, leader 10\.0\.0\.11:8300\n$/);
        // What was unzipped is what is installed, executable, and no staged copy is left.
        assert.ok(fs.readFileSync(host.paths.binary).equals(build), "the zip's consul is the installed binary");
        assert.strictEqual(fs.statSync(host.paths.binary).mode & 0o777, 0o755);
        assert.ok(!fs.existsSync(`${host.paths.binary}.new`));
        assert.deepStrictEqual(
            run.requests.filter((r) => r.url.startsWith(MIRROR)).map((r) => `${r.method} ${r.url}`),
            [ZIP, SUMS, `${SUMS}.sig`].map((f) => `GET ${MIRROR}${RELEASE_DIR}/${f}`),
        );
        assert.deepStrictEqual(
            host.tree().filter((p) => /\.consul-|^\/tmp\/./.test(p)),
            [],
        );
    });

    it("a SHA256SUMS re-hashed for another zip fails gpgv's check (BAD signature): nothing is staged or installed", () => {
        const genuine = sums(zipOf("consul", consulBuild("release")));
        const sig = sign(releaseKeyPair, genuine);
        const tamperedZip = zipOf("consul", consulBuild("tampered"));
        serve({ zip: tamperedZip, sums: sums(tamperedZip), sig });
        const fpr = releaseKeyPair.trust.fingerprint;
        refused(
            new RegExp(
                `^c1 install: FAILED: ${SUMS} is not signed by the release key ${fpr} \\(gpgv: BAD signature from "consul-pulumi test releases <[^>]+>"[^)]*\\): the mirror serves files that key did not sign; nothing was installed\\n$`,
            ),
        );
    });

    it("a genuine signed SHA256SUMS served with a different zip fails on its SHA-256: nothing is installed", () => {
        const genuineZip = zipOf("consul", consulBuild("release"));
        const list = sums(genuineZip);
        const otherZip = zipOf("consul", consulBuild("another build"));
        serve({ zip: otherZip, sums: list, sig: sign(releaseKeyPair, list) });
        refused(
            new RegExp(
                `^c1 install: FAILED: SHA-256 of ${ZIP.replace(/\./g, "\\.")} is ${hex(otherZip)}, expected ${hex(genuineZip)}: the download is corrupt or was tampered with; nothing was installed\\n$`,
            ),
        );
    });

    it("a SHA256SUMS signed by another key is refused", () => {
        const zip = zipOf("consul", consulBuild("release"));
        const list = sums(zip);
        serve({ zip, sums: list, sig: sign(otherKey, list) });
        refused(
            new RegExp(
                `^c1 install: FAILED: ${SUMS} is not signed by the release key ${releaseKeyPair.trust.fingerprint} \\(gpgv: Can't check signature: No public key\\): the mirror serves files that key did not sign; nothing was installed\\n$`,
            ),
        );
    });
});
