// The release key the hosts verify Consul's SHA256SUMS with, checked against gpg itself.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    dearmor,
    HASHICORP_RELEASE_KEY,
    HASHICORP_RELEASE_KEY_FINGERPRINT,
    primaryFingerprint,
    releaseKey,
    TEST_RELEASE_KEY_ENV,
} from "../../components/security/release-trust";

function gpg(home: string, ...args: string[]): string {
    const r = spawnSync("gpg", ["--homedir", home, "--batch", ...args], { encoding: "utf8" });
    assert.strictEqual(r.status, 0, r.stderr);
    return r.stdout;
}

describe("release key", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "consul-gpg-"));
    after(() => fs.rmSync(home, { recursive: true, force: true }));

    it("ships HashiCorp's key, whose fingerprint gpg reads as the documented one", () => {
        const key = releaseKey({});
        assert.strictEqual(key.fingerprint, HASHICORP_RELEASE_KEY_FINGERPRINT);
        assert.strictEqual(key.testKeyFile, undefined);
        const keyring = path.join(home, "hashicorp.gpg");
        fs.writeFileSync(keyring, Buffer.from(key.keyringBase64, "base64"));
        const fprs = gpg(home, "--with-colons", "--show-keys", keyring)
            .split("\n")
            .filter((l) => l.startsWith("fpr:"));
        assert.strictEqual(fprs[0].split(":")[9], HASHICORP_RELEASE_KEY_FINGERPRINT);
        const readme = fs.readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
        assert.ok(readme.includes("C874 011F 0AB4 0511 0D02  1055 3436 5D94 72D7 468F"), "README documents it");
    });

    it("refuses an armored key whose checksum does not match, and a file that holds another key", () => {
        const lines = HASHICORP_RELEASE_KEY.split("\n");
        const i = lines.findIndex((l) => l.startsWith("mQINB"));
        lines[i] = lines[i].slice(0, 10) + (lines[i][10] === "A" ? "B" : "A") + lines[i].slice(11);
        assert.throws(() => dearmor(lines.join("\n")), /checksum does not match/);
    });

    it("trusts the tests' key instead when the test suites name its file, with that key's fingerprint", () => {
        gpg(
            home,
            "--passphrase",
            "",
            "--quick-gen-key",
            "consul-pulumi unit test <unit@invalid>",
            "ed25519",
            "sign",
            "never",
        );
        const file = path.join(home, "test.asc");
        fs.writeFileSync(file, gpg(home, "--armor", "--export"));
        const key = releaseKey({ [TEST_RELEASE_KEY_ENV]: file });
        const fpr = gpg(home, "--with-colons", "--list-keys")
            .split("\n")
            .find((l) => l.startsWith("fpr:"))
            ?.split(":")[9];
        assert.strictEqual(key.fingerprint, fpr);
        assert.strictEqual(key.testKeyFile, file);
        assert.strictEqual(primaryFingerprint(Buffer.from(key.keyringBase64, "base64")), fpr);
    });
});
