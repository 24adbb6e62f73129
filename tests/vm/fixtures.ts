// A small VM stack's settings and node material, for tests that render host files without Pulumi.

import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseSettings, Settings } from "../../components/config";
import { NodeMaterial } from "../../components/vm";
import type { NodeFile } from "../../components/vm/bundle";
import { stackFileConfig } from "../mocks";

/** Three servers (s1..s3) and one client (c1), with a throw-away SSH key file. */
export function sampleVmSettings(): Settings {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "consul-vm-files-"));
    const key = path.join(tmp, "id");
    fs.writeFileSync(key, crypto.generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }));
    return parseSettings(
        {
            topology: "vm",
            serverHosts: JSON.stringify(["s1=10.0.0.11", "s2=10.0.0.12", "s3=10.0.0.13"]),
            clientHosts: JSON.stringify(["c1=10.0.1.1"]),
            sshPrivateKeyPath: key,
            sshHostKeys: JSON.stringify(["s1", "s2", "s3", "c1"].map((n) => `${n}=${exampleHostKey(n)}`)),
        },
        "consul",
        "prod",
    );
}

/** A well-formed ed25519 host key, the same for the same name (tests need no real host). */
export function exampleHostKey(name: string): string {
    const body = crypto.createHash("sha256").update(name).digest();
    const blob = Buffer.concat([
        Buffer.from([0, 0, 0, 11]),
        Buffer.from("ssh-ed25519"),
        Buffer.from([0, 0, 0, 32]),
        body,
    ]);
    return `ssh-ed25519 ${blob.toString("base64")}`;
}

/** The config with every listed host's key pinned (example keys), as non-development stacks need. */
export function withPinnedKeys(config: Record<string, string>): Record<string, string> {
    const names = ["serverHosts", "clientHosts"].flatMap((k) =>
        (JSON.parse(config[k] ?? "[]") as string[]).map((entry) => entry.slice(0, entry.indexOf("="))),
    );
    return { ...config, sshHostKeys: JSON.stringify(names.map((n) => `${n}=${exampleHostKey(n)}`)) };
}

/** Material shaped like the real thing; the key bodies are markers a test can look for. */
export function sampleMaterial(): NodeMaterial {
    return {
        caCertPem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
        gossipKey: crypto.randomBytes(32).toString("base64"),
        serverCertPem: "-----BEGIN CERTIFICATE-----\nS\n-----END CERTIFICATE-----\n",
        serverKeyPem: "-----BEGIN EC PRIVATE KEY-----\nSECRETSERVERKEY\n-----END EC PRIVATE KEY-----\n",
        cliCertPem: "-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n",
        cliKeyPem: "-----BEGIN EC PRIVATE KEY-----\nSECRETCLIKEY\n-----END EC PRIVATE KEY-----\n",
        managementToken: crypto.randomUUID(),
        agentToken: crypto.randomUUID(),
    };
}

/** The agents' TLS 1.2 suites: ECDHE with AES-GCM or ChaCha20-Poly1305 only (no CBC, which testssl.sh flags). */
export const AEAD_SUITES =
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256," +
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

/**
 * The prod stack's settings with `servers` + `clients` hosts at documentation addresses, each with a
 * pinned example key: the VM tests' and the benchmark's stacks of any size.
 */
export function prodStackWithHosts(servers: number, clients: number): Record<string, string> {
    const { config } = stackFileConfig("prod");
    return withPinnedKeys({
        ...config,
        serverCount: String(servers),
        serverHosts: JSON.stringify(
            Array.from({ length: servers }, (_, i) => `consul-server-${i + 1}=10.20.0.${11 + i}`),
        ),
        clientHosts: JSON.stringify(
            Array.from(
                { length: clients },
                (_, i) => `app-${i + 1}=10.20.${1 + Math.floor(i / 200)}.${(i % 200) + 21}`,
            ),
        ),
    });
}

/** The bucket's secret key in SNAPSHOT_CONFIG, a marker tests look for. */
export const SNAPSHOT_S3_SECRET = "s3-Secret-Access-Key-0123456789";

/** Snapshots on (set snapshotS3SecretAccessKey with --secret: pass it in secretKeys). */
export const SNAPSHOT_CONFIG: Readonly<Record<string, string>> = {
    snapshotInterval: "1h",
    snapshotRetain: "3",
    snapshotS3Endpoint: "https://s3.eu-west-1.amazonaws.com",
    snapshotS3Bucket: "acme-consul-backups",
    snapshotS3Region: "eu-west-1",
    snapshotS3AccessKeyId: "AKIAEXAMPLE0000001",
    snapshotS3SecretAccessKey: SNAPSHOT_S3_SECRET,
};

/** Parses the stdin bundle back into files. */
export function parseBundle(bundle: string): NodeFile[] {
    return bundle
        .split("\n")
        .filter((l) => l !== "")
        .map((line) => {
            const [p, mode, owner, group, data] = line.split(" ");
            return {
                path: p,
                mode,
                owner: owner as NodeFile["owner"],
                group: group as NodeFile["group"],
                content: Buffer.from(data, "base64").toString("utf8"),
            };
        });
}
