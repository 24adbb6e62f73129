// Which key a downloaded Consul release must be signed with. The hosts check the SHA256SUMS
// signature with gpgv against this key before they trust any hash in it, so a mirror (or whoever
// sits between it and the host) can serve only what HashiCorp signed.

import * as crypto from "crypto";
import * as fs from "fs";
import { HASHICORP_RELEASE_KEY } from "./release-keys/hashicorp";

export { HASHICORP_RELEASE_KEY };
export const HASHICORP_RELEASE_KEY_FINGERPRINT = "C874011F0AB405110D02105534365D9472D7468F";

/**
 * The tests' own release signing key (an armored public key file). Set only by the test suites,
 * which serve Consul builds of their own; the program warns whenever it is set.
 */
export const TEST_RELEASE_KEY_ENV = "CONSUL_PULUMI_TEST_RELEASE_KEY_FILE";

export interface ReleaseKey {
    /** The key as a binary OpenPGP keyring (what gpgv --keyring reads), base64. */
    readonly keyringBase64: string;
    /** The primary key's v4 fingerprint, upper-case hex. */
    readonly fingerprint: string;
    /** Set when the key is not HashiCorp's: where it came from. */
    readonly testKeyFile?: string;
}

/** The key releases must be signed with: HashiCorp's, or the tests' when they set theirs. */
export function releaseKey(env: NodeJS.ProcessEnv = process.env): ReleaseKey {
    const testKeyFile = env[TEST_RELEASE_KEY_ENV];
    if (testKeyFile) {
        const keyring = dearmor(fs.readFileSync(testKeyFile, "utf8"));
        return { keyringBase64: keyring.toString("base64"), fingerprint: primaryFingerprint(keyring), testKeyFile };
    }
    const keyring = dearmor(HASHICORP_RELEASE_KEY);
    const fingerprint = primaryFingerprint(keyring);
    if (fingerprint !== HASHICORP_RELEASE_KEY_FINGERPRINT) {
        throw new Error(
            `components/release-keys/hashicorp.ts holds key ${fingerprint}, not HashiCorp's ${HASHICORP_RELEASE_KEY_FINGERPRINT}`,
        );
    }
    return { keyringBase64: keyring.toString("base64"), fingerprint };
}

/** The packets of an ASCII-armored OpenPGP block (RFC 4880 §6), its CRC-24 checked. */
export function dearmor(armored: string): Buffer {
    const lines = armored.replace(/\r/g, "").split("\n");
    const begin = lines.findIndex((l) => /^-----BEGIN PGP PUBLIC KEY BLOCK-----$/.test(l));
    const end = lines.findIndex((l) => /^-----END PGP PUBLIC KEY BLOCK-----$/.test(l));
    if (begin < 0 || end < begin) throw new Error("not an armored OpenPGP public key block");
    const body = lines.slice(begin + 1, end);
    const blank = body.findIndex((l) => l.trim() === "");
    const data = body.slice(blank + 1).filter((l) => l.trim() !== "");
    const checksum = data.length > 0 && data[data.length - 1].startsWith("=") ? data.pop() : undefined;
    const bytes = Buffer.from(data.join(""), "base64");
    if (checksum !== undefined && Buffer.from(checksum.slice(1), "base64").readUIntBE(0, 3) !== crc24(bytes)) {
        throw new Error("the armored key's checksum does not match its contents");
    }
    return bytes;
}

function crc24(bytes: Buffer): number {
    let crc = 0xb704ce;
    for (const byte of bytes) {
        crc ^= byte << 16;
        for (let i = 0; i < 8; i++) {
            crc <<= 1;
            if (crc & 0x1000000) crc ^= 0x1864cfb;
        }
    }
    return crc & 0xffffff;
}

/** The v4 fingerprint of the first packet, which must be a public key (RFC 4880 §12.2). */
export function primaryFingerprint(keyring: Buffer): string {
    const first = keyring[0];
    if (first === undefined || (first & 0x80) === 0) throw new Error("not an OpenPGP packet");
    let tag: number;
    let offset: number;
    let length: number;
    if (first & 0x40) {
        tag = first & 0x3f;
        const l0 = keyring[1];
        if (l0 < 192) [offset, length] = [2, l0];
        else if (l0 < 224) [offset, length] = [3, ((l0 - 192) << 8) + keyring[2] + 192];
        else if (l0 === 255) [offset, length] = [6, keyring.readUInt32BE(2)];
        else throw new Error("partial-length public key packet");
    } else {
        tag = (first >> 2) & 0x0f;
        const lengthType = first & 0x03;
        if (lengthType === 0) [offset, length] = [2, keyring[1]];
        else if (lengthType === 1) [offset, length] = [3, keyring.readUInt16BE(1)];
        else if (lengthType === 2) [offset, length] = [5, keyring.readUInt32BE(1)];
        else throw new Error("indeterminate-length public key packet");
    }
    if (tag !== 6) throw new Error(`the first packet is tag ${tag}, not a public key`);
    const body = keyring.subarray(offset, offset + length);
    if (body[0] !== 4) throw new Error(`public key version ${body[0]}, not 4`);
    const prefix = Buffer.from([0x99, (length >> 8) & 0xff, length & 0xff]);
    return crypto
        .createHash("sha1")
        .update(Buffer.concat([prefix, body]))
        .digest("hex")
        .toUpperCase();
}
