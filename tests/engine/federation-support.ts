// What the federation suite (./federation.e2e.ts) needs beyond the other suites' helpers: server
// certificates made with openssl on this machine and swapped in for a server's own over SSH (the
// original kept aside and put back); the WAN member list, ACL replication status and ACL writes
// through the HTTP API; the stack's private keys from a decrypted state export; and the record of
// every CLI output and event log, searched for secrets.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PATHS } from "../../components/vm/paths";
import { TYPES } from "../../policy/rules";
import { Member } from "../e2e/checks";
import { api, ApiOptions, Hosts } from "../e2e/infra";
import { nameOf, Update } from "./pulumi-cli";

export interface KeyPair {
    readonly certPem: string;
    readonly keyPem: string;
}

function openssl(dir: string, args: string[]): void {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
}

const P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/**
 * A server certificate as Consul's own (ECDSA P-256, server and client auth) for `dnsNames` and
 * `ips`, signed by `issuer`, or by a new CA of its own when there is none. Its certPem is the leaf
 * followed by the issuer's certificate: the chain a server presents.
 */
export function serverCertificate(dnsNames: readonly string[], ips: readonly string[], issuer?: KeyPair): KeyPair {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-fed-cert-"));
    try {
        if (issuer) {
            fs.writeFileSync(path.join(dir, "ca.pem"), issuer.certPem);
            fs.writeFileSync(path.join(dir, "ca-key.pem"), issuer.keyPem, { mode: 0o600 });
        } else {
            openssl(dir, [
                ...["req", "-x509", ...P256, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1"],
                ...["-subj", "/O=Elsewhere/CN=Another CA", "-addext", "basicConstraints=critical,CA:TRUE"],
                ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ]);
        }
        openssl(dir, ["req", "-new", ...P256, "-keyout", "key.pem", "-out", "csr.pem", "-subj", `/CN=${dnsNames[0]}`]);
        const san = [...dnsNames.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)].join(",");
        fs.writeFileSync(
            path.join(dir, "ext.cnf"),
            [
                `subjectAltName=${san}`,
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature,keyEncipherment",
                "extendedKeyUsage=serverAuth,clientAuth",
                "",
            ].join("\n"),
        );
        openssl(dir, [
            ...["x509", "-req", "-in", "csr.pem", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial"],
            ...["-days", "1", "-out", "cert.pem", "-extfile", "ext.cnf"],
        ]);
        const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
        const leaf = read("cert.pem");
        return { certPem: (leaf.endsWith("\n") ? leaf : leaf + "\n") + read("ca.pem"), keyPem: read("key.pem") };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Where the server's own certificate and key wait while another one is installed (root-only). */
const KEPT = "/root/consul-fed-own-cert";

/**
 * Puts `pair` in place of host i's server certificate and key (the files keep their owner and
 * mode; the originals are kept aside the first time) and restarts its agent.
 */
export async function installServerCert(hosts: Hosts, i: number, pair: KeyPair): Promise<void> {
    await hosts.run(
        i,
        `test -d ${KEPT} || { mkdir -m 700 ${KEPT} && cp -p ${PATHS.serverCert} ${PATHS.serverKey} ${KEPT}/; }`,
    );
    await hosts.run(i, `cat > ${PATHS.serverCert}`, { stdin: pair.certPem });
    await hosts.run(i, `cat > ${PATHS.serverKey}`, { stdin: pair.keyPem });
    await hosts.run(i, "systemctl restart consul");
}

/** Puts host i's own certificate and key back (as they were, byte for byte) and restarts its agent. */
export async function restoreServerCert(hosts: Hosts, i: number): Promise<void> {
    await hosts.run(i, `cp -p ${KEPT}/* ${PATHS.tlsDir}/ && rm -r ${KEPT} && systemctl restart consul`);
}

/** `consul members -wan` as the server at `address` answers: servers of every datacenter, `<node>.<dc>`. */
export async function wanMembers(address: string, opts: ApiOptions): Promise<Member[]> {
    const r = await api(address, "/v1/agent/members?wan=1", opts);
    assert.strictEqual(r.status, 200, r.body);
    return JSON.parse(r.body) as Member[];
}

/** A member's serf status (1 alive, 3 left, 4 failed), 0 if absent. */
export function statusOf(members: readonly Member[], name: string): number {
    return members.find((m) => m.Name === name)?.Status ?? 0;
}

/** Consul 1.16's /v1/acl/replication answer (agent/structs ACLReplicationStatus). */
export interface ReplicationStatus {
    readonly Enabled: boolean;
    readonly Running: boolean;
    readonly SourceDatacenter: string;
    readonly ReplicationType: string;
    readonly ReplicatedIndex: number;
    readonly ReplicatedTokenIndex: number;
    readonly LastSuccess: string;
    readonly LastError: string;
    readonly LastErrorMessage?: string;
}

export async function replicationStatus(address: string, opts: ApiOptions): Promise<ReplicationStatus> {
    const r = await api(address, "/v1/acl/replication", opts);
    assert.strictEqual(r.status, 200, r.body);
    return JSON.parse(r.body) as ReplicationStatus;
}

/**
 * What a secondary answers for a token it does not have. A secondary never bootstraps ACLs, so
 * Consul 1.16 (agent/consul/acl_server.go, ResolveIdentityFromToken) prefixes "ACL not found" with
 * its can-still-bootstrap hint.
 */
export const UNKNOWN_TOKEN_IN_SECONDARY =
    "ACL system must be bootstrapped before making any requests that require authorization: ACL not found";

/** Creates (or updates) an ACL policy with `rules` through the server at `address`. */
export async function upsertPolicy(address: string, opts: ApiOptions, name: string, rules: string): Promise<void> {
    const list = await api(address, "/v1/acl/policies", opts);
    assert.strictEqual(list.status, 200, list.body);
    const existing = (JSON.parse(list.body) as { ID: string; Name: string }[]).find((p) => p.Name === name);
    const r = await api(address, `/v1/acl/policy${existing ? `/${existing.ID}` : ""}`, {
        ...opts,
        method: "PUT",
        body: JSON.stringify({ Name: name, Rules: rules }),
    });
    assert.strictEqual(r.status, 200, r.body);
}

/** A new global token with policy `policy`, created through the server at `address`: its SecretID. */
export async function createToken(address: string, opts: ApiOptions, policy: string, what: string): Promise<string> {
    const r = await api(address, "/v1/acl/token", {
        ...opts,
        method: "PUT",
        body: JSON.stringify({ Description: what, Policies: [{ Name: policy }] }),
    });
    assert.strictEqual(r.status, 200, r.body);
    const token = JSON.parse(r.body) as { SecretID: string; Local: boolean };
    assert.strictEqual(token.Local, false, "a local token is never replicated");
    return token.SecretID;
}

interface StateResource {
    readonly type: string;
    readonly urn: string;
    readonly outputs?: Record<string, unknown>;
}

/** The private key of the tls PrivateKey resource `name` in a `stack export --show-secrets`. */
export function privateKeyIn(exported: string, name: string): string {
    const state = JSON.parse(exported) as { deployment: { resources?: StateResource[] } };
    const resource = (state.deployment.resources ?? []).find(
        (r) => r.type === TYPES.privateKey && nameOf(r.urn) === name,
    );
    assert.ok(resource, `no ${TYPES.privateKey} named ${name} in the state`);
    // --show-secrets writes a secret as {<signature>: ..., plaintext: <its JSON>}.
    const value = resource.outputs?.privateKeyPem as { plaintext?: string } | string | undefined;
    const pem = typeof value === "object" && typeof value.plaintext === "string" ? JSON.parse(value.plaintext) : value;
    assert.ok(typeof pem === "string" && pem.includes("PRIVATE KEY"), `${name} has no private key in the state`);
    return pem;
}

/** The base64 lines of a PEM key: each one alone is enough to find a copy of the key. */
export function keyLines(pem: string): string[] {
    return pem.split("\n").filter((l) => l.length >= 40 && !l.startsWith("-----"));
}

/**
 * Every CLI output and event log of the suite, to search for secrets. The SDK's debug-level
 * messages are kept apart (as in engine.e2e.ts scenario 4): it logs each RegisterResource response
 * there, secrets in plaintext, and the CLI shows them only with --debug.
 */
export class OutputRecord {
    readonly texts: { what: string; text: string }[] = [];
    readonly debugLines: string[] = [];

    update(what: string, update: Update): Update {
        const isDebug = (line: string) =>
            line.trim() !== "" &&
            (JSON.parse(line) as { diagnosticEvent?: { severity: string } }).diagnosticEvent?.severity === "debug";
        const lines = update.eventLog.split("\n");
        this.texts.push(
            { what: `${what}'s output`, text: update.output },
            { what: `${what}'s event log`, text: lines.filter((l) => !isDebug(l)).join("\n") },
        );
        this.debugLines.push(...lines.filter(isDebug));
        return update;
    }

    text(what: string, text: string): void {
        this.texts.push({ what, text });
    }

    /** Fails naming the secret and where it is (the 300 characters before it, never the secret). */
    assertNone(secrets: readonly (readonly [string, string])[]): void {
        for (const [what, value] of secrets) {
            assert.ok(value.length >= 20, `${what} is not known to the test`);
            for (const t of this.texts) {
                const at = t.text.indexOf(value);
                if (at >= 0)
                    assert.fail(
                        `the ${what} is in ${t.what}, after: ${JSON.stringify(t.text.slice(Math.max(0, at - 300), at))}`,
                    );
            }
        }
    }
}
