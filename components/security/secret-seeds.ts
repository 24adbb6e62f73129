// The gossip key and the ACL token IDs are derived from random.RandomPassword results rather than
// taken from RandomBytes/RandomUuid: those two use their value as the resource ID, and Pulumi keeps
// resource IDs in the state unencrypted (found by applying the real providers, scripts/engine).
// RandomPassword's ID is "none" and its result is a provider-side secret. The derivations are pure
// so the tests and the policy pack can recompute them.

import * as crypto from "crypto";

/** Seed length: 64 characters of [A-Za-z0-9] carry about 381 bits, more than any value we derive. */
export const SEED_LENGTH = 64;

/** A gossip key as `consul keygen` prints it: 32 bytes, standard base64. */
export function gossipKeyFromSeed(seed: string): string {
    return crypto.createHash("sha256").update(`consul-gossip-key\0${seed}`).digest("base64");
}

/** A random (version 4, RFC 4122 variant) UUID, the form Consul expects for a token SecretID. */
export function tokenFromSeed(seed: string): string {
    return uuidFromDigest(crypto.createHash("sha256").update(`consul-acl-token\0${seed}`).digest());
}

/** The first 16 bytes of a digest in the form of a version 4, RFC 4122 variant UUID. */
export function uuidFromDigest(digest: Buffer): string {
    const bytes = Buffer.from(digest.subarray(0, 16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = bytes.toString("hex");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
