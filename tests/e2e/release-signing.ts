// The key the suites sign their Consul builds' SHA256SUMS with, in place of HashiCorp's: generated
// per test process, trusted by the program only through CONSUL_PULUMI_TEST_RELEASE_KEY_FILE, which
// this module sets (the replay suite's program and the engine's CLI inherit it).

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { TEST_RELEASE_KEY_ENV } from "../../components/security/release-trust";

interface SigningKey {
    readonly home: string;
    readonly publicKeyFile: string;
}

let key: SigningKey | undefined;

function gpg(home: string, args: readonly string[]): string {
    const r = spawnSync("gpg", ["--homedir", home, "--batch", "--pinentry-mode", "loopback", ...args], {
        encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`gpg ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
}

/** The suite's signing key (made on first use), its public half trusted by the program. */
export function testReleaseKey(): SigningKey {
    if (key) return key;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "consul-release-key-"));
    gpg(home, [
        "--passphrase",
        "",
        "--quick-gen-key",
        "consul-pulumi e2e releases <e2e@invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    const publicKeyFile = path.join(home, "release-key.asc");
    fs.writeFileSync(publicKeyFile, gpg(home, ["--armor", "--export"]));
    process.env[TEST_RELEASE_KEY_ENV] = publicKeyFile;
    process.on("exit", () => {
        spawnSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"]);
        fs.rmSync(home, { recursive: true, force: true });
    });
    key = { home, publicKeyFile };
    return key;
}

/** Writes a detached signature of `file` by the suite's key to `signature` (as HashiCorp's .sig). */
export function signWithTestKey(file: string, signature: string): void {
    fs.rmSync(signature, { force: true });
    gpg(testReleaseKey().home, ["--passphrase", "", "--detach-sign", "--output", signature, file]);
}
