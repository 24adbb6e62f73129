// Looks for secrets stored in plaintext in a Pulumi state.
// Usage: node audit-state.js <export --show-secrets JSON> <export JSON>
// Every value the first export shows as a decrypted secret (at least 8 characters) is searched for
// in the second, encrypted export; a hit means the value is also stored somewhere unencrypted (a
// resource ID, a plain input or output, a URN). Prints one line per hit and exits 1 if any.
// PEM certificates, certificate requests and public keys are public by nature: a program may
// mark them secret, but finding them in plaintext is no leak, so they are not searched for.
// Neither are the addressing fields of an object that is secret as a whole: the command SDK marks
// every `connection` secret for the key or password in it, but its host, user and host key are the
// machine's public address and identity (they are in the triggers and certificates too).
"use strict";
const fs = require("fs");

const SIG = "4dabf18193072939515e22adb298388d";
const PUBLIC_PEM = /^\s*-----BEGIN (CERTIFICATE|CERTIFICATE REQUEST|PUBLIC KEY)-----/;
const PUBLIC_FIELDS = new Set(["host", "user", "hostKey"]);
const decrypted = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const encrypted = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));

// Secret values by the resource and property that hold them as secrets.
const secrets = new Map();
function collect(value, where) {
    if (Array.isArray(value)) return value.forEach((v, i) => collect(v, `${where}[${i}]`));
    if (value === null || typeof value !== "object") return;
    if (value[SIG] !== undefined && typeof value.plaintext === "string") {
        const leaves = [];
        (function walk(v, key) {
            if (typeof v === "string") {
                if (!PUBLIC_FIELDS.has(key)) leaves.push(v);
            } else if (Array.isArray(v)) v.forEach((e) => walk(e, key));
            else if (v && typeof v === "object") Object.entries(v).forEach(([k, e]) => walk(e, k));
        })(JSON.parse(value.plaintext), undefined);
        for (const leaf of leaves) {
            if (leaf.length < 8 || secrets.has(leaf) || PUBLIC_PEM.test(leaf)) continue;
            secrets.set(leaf, where);
        }
        return;
    }
    for (const [k, v] of Object.entries(value)) collect(v, `${where}.${k}`);
}
for (const r of decrypted.deployment.resources || []) {
    const name = r.urn.split("::").pop();
    collect(r.inputs, `${name} inputs`);
    collect(r.outputs, `${name} outputs`);
}

// Where a value appears in plain (non-secret) parts of the encrypted export.
function findPlain(value, needle, where, hits) {
    if (typeof value === "string") {
        if (value.includes(needle)) hits.push(where);
        return;
    }
    if (Array.isArray(value)) return value.forEach((v, i) => findPlain(v, needle, `${where}[${i}]`, hits));
    if (value === null || typeof value !== "object") return;
    if (value[SIG] !== undefined) return; // an encrypted secret
    for (const [k, v] of Object.entries(value)) findPlain(v, needle, `${where}.${k}`, hits);
}

let leaks = 0;
for (const [secret, where] of secrets) {
    const hits = [];
    for (const r of encrypted.deployment.resources || []) {
        findPlain(r, secret, r.urn.split("::").pop(), hits);
    }
    for (const hit of hits) {
        leaks++;
        console.log(`PLAINTEXT: the secret ${where} (${secret.length} chars) is stored unencrypted at ${hit}`);
    }
}
console.log(`${secrets.size} secret values checked, ${leaks} stored in plaintext as well`);
process.exit(leaks > 0 ? 1 : 0);
