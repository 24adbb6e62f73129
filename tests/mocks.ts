// The one mocks helper. It stands in for the Pulumi engine only: `tls:*` resources mint real keys
// and certificates from their inputs (algorithm, curve, subject, SANs, usages, validity as the
// provider would), `random:*` real random values, so tests can verify the material with openssl.

import "reflect-metadata";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import * as x509 from "@peculiar/x509";
import * as pulumi from "@pulumi/pulumi";

x509.cryptoProvider.set(crypto.webcrypto as Crypto);

export const PROJECT = "consul";
export const REPO_ROOT = path.join(__dirname, "..");

/** The SDK's marker for a secret value inside resource inputs. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export interface RecordedResource {
    readonly type: string;
    readonly name: string;
    /** Inputs with secret wrappers removed. */
    readonly inputs: Record<string, unknown>;
    /** Inputs as the SDK sent them, secret wrappers included. */
    readonly rawInputs: Record<string, unknown>;
    readonly state: Record<string, unknown>;
    /** The explicit provider reference (`urn::id`), if the resource was given one. */
    readonly provider?: string;
    /** URNs the engine would wait for (dependsOn and input dependencies), as the SDK sent them. */
    readonly dependencies: readonly string[];
    /** Order in which the program registered the resource (0-based). */
    readonly order: number;
    /** The `deleteBeforeReplace` resource option, as the SDK sent it. */
    readonly deleteBeforeReplace?: boolean;
    /** The `retainOnDelete` resource option: the engine drops it from the state without a delete. */
    readonly retainOnDelete?: boolean;
}

// The SDK's mock monitor drops a registration's dependency list before calling `newResource`. Keep
// it: the request is seen here first, and `newResource` is called synchronously right after.
interface DependencyRequest {
    getDependenciesList(): string[];
    getDeletebeforereplace(): boolean;
    getIgnorechangesList(): string[];
    getRetainondelete(): boolean;
}
type RegisterResource = (this: unknown, req: DependencyRequest, callback: unknown) => unknown;
let pendingDependencies: string[] = [];
let pendingDeleteBeforeReplace = false;
let pendingIgnoreChanges: string[] = [];
let pendingRetainOnDelete = false;
{
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const monitor = require("@pulumi/pulumi/runtime/mocks") as { MockMonitor: { prototype: Record<string, unknown> } };
    const proto = monitor.MockMonitor.prototype;
    const original = proto.registerResource as RegisterResource;
    if (!(original as { recordsDependencies?: boolean }).recordsDependencies) {
        const wrapped: RegisterResource = function (this: unknown, req, callback) {
            pendingDependencies = req.getDependenciesList();
            pendingDeleteBeforeReplace = req.getDeletebeforereplace();
            pendingIgnoreChanges = req.getIgnorechangesList();
            pendingRetainOnDelete = req.getRetainondelete();
            return original.call(this, req, callback);
        };
        (wrapped as { recordsDependencies?: boolean }).recordsDependencies = true;
        proto.registerResource = wrapped;
    }
}

/** Removes the SDK's secret wrappers, recursively. */
export function unwrapSecrets(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (value !== null && typeof value === "object") {
        const record = value as Record<string, unknown>;
        if (SECRET_SIG in record && "value" in record) return unwrapSecrets(record.value);
        return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

/** True if the (raw) input holds a secret-wrapped value anywhere. */
export function containsSecret(value: unknown): boolean {
    if (Array.isArray(value)) return value.some(containsSecret);
    if (value !== null && typeof value === "object") {
        const record = value as Record<string, unknown>;
        if (SECRET_SIG in record) return true;
        return Object.values(record).some(containsSecret);
    }
    return false;
}

const CURVES: Record<string, string> = { P224: "secp224r1", P256: "prime256v1", P384: "secp384r1", P521: "secp521r1" };
const WEBCRYPTO_CURVES: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };

function mintPrivateKey(inputs: Record<string, unknown>): Record<string, unknown> {
    const algorithm = (inputs.algorithm as string) ?? "RSA";
    let keys: crypto.KeyPairKeyObjectResult;
    let pem: string;
    if (algorithm === "ECDSA") {
        const curve = CURVES[(inputs.ecdsaCurve as string) ?? "P224"];
        keys = crypto.generateKeyPairSync("ec", { namedCurve: curve });
        pem = keys.privateKey.export({ type: "sec1", format: "pem" }).toString();
    } else if (algorithm === "ED25519") {
        keys = crypto.generateKeyPairSync("ed25519");
        pem = keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    } else {
        keys = crypto.generateKeyPairSync("rsa", { modulusLength: (inputs.rsaBits as number) ?? 2048 });
        pem = keys.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    }
    const publicDer = keys.publicKey.export({ type: "spki", format: "der" });
    return {
        ...inputs,
        privateKeyPem: pem,
        privateKeyPemPkcs8: keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        publicKeyPem: keys.publicKey.export({ type: "spki", format: "pem" }).toString(),
        publicKeyFingerprintSha256: "SHA256:" + crypto.createHash("sha256").update(publicDer).digest("base64"),
    };
}

async function importSigningKey(pem: string): Promise<{ key: CryptoKey; algorithm: EcKeyImportParams & EcdsaParams }> {
    const keyObject = crypto.createPrivateKey(pem);
    const curve = WEBCRYPTO_CURVES[keyObject.asymmetricKeyDetails?.namedCurve ?? ""];
    if (!curve)
        throw new Error(
            `mock tls: only ECDSA P-256/384/521 signing keys are supported, got ${keyObject.asymmetricKeyType}`,
        );
    const algorithm = { name: "ECDSA", namedCurve: curve, hash: curve === "P-256" ? "SHA-256" : "SHA-384" };
    const der = keyObject.export({ type: "pkcs8", format: "der" });
    const key = await crypto.webcrypto.subtle.importKey("pkcs8", der, algorithm, true, ["sign"]);
    return { key: key, algorithm };
}

async function publicKeyOf(pem: string, algorithm: EcKeyImportParams): Promise<CryptoKey> {
    const der = crypto.createPublicKey(pem).export({ type: "spki", format: "der" });
    return await crypto.webcrypto.subtle.importKey("spki", der, algorithm, true, ["verify"]);
}

function subjectName(subject: Record<string, unknown> | undefined): string {
    const parts: string[] = [];
    const fields: [string, string][] = [
        ["country", "C"],
        ["province", "ST"],
        ["locality", "L"],
        ["organization", "O"],
        ["organizationalUnit", "OU"],
        ["commonName", "CN"],
    ];
    for (const [field, attr] of fields) {
        const value = subject?.[field];
        if (typeof value === "string" && value !== "") parts.push(`${attr}=${value.replace(/([,+="\\<>;])/g, "\\$1")}`);
    }
    return parts.join(", ");
}

function keyUsages(allowed: string[]): { flags: number; extended: string[] } {
    const flagOf: Record<string, number> = {
        digital_signature: x509.KeyUsageFlags.digitalSignature,
        content_commitment: x509.KeyUsageFlags.nonRepudiation,
        key_encipherment: x509.KeyUsageFlags.keyEncipherment,
        data_encipherment: x509.KeyUsageFlags.dataEncipherment,
        key_agreement: x509.KeyUsageFlags.keyAgreement,
        cert_signing: x509.KeyUsageFlags.keyCertSign,
        crl_signing: x509.KeyUsageFlags.cRLSign,
    };
    const extendedOf: Record<string, string> = {
        server_auth: x509.ExtendedKeyUsage.serverAuth,
        client_auth: x509.ExtendedKeyUsage.clientAuth,
        code_signing: x509.ExtendedKeyUsage.codeSigning,
        email_protection: x509.ExtendedKeyUsage.emailProtection,
    };
    let flags = 0;
    const extended: string[] = [];
    for (const use of allowed) {
        if (use in flagOf) flags |= flagOf[use];
        else if (use in extendedOf) extended.push(extendedOf[use]);
        else throw new Error(`mock tls: unknown allowed use ${use}`);
    }
    return { flags, extended };
}

function sanExtension(dnsNames: string[] = [], ipAddresses: string[] = []): x509.Extension[] {
    const entries = [
        ...dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...ipAddresses.map((value) => ({ type: "ip" as const, value })),
    ];
    return entries.length > 0 ? [new x509.SubjectAlternativeNameExtension(entries, false)] : [];
}

function validity(hours: number): { notBefore: Date; notAfter: Date } {
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
    return { notBefore, notAfter: new Date(notBefore.getTime() + hours * 3600 * 1000) };
}

function serialNumber(): string {
    const bytes = crypto.randomBytes(16);
    bytes[0] &= 0x7f;
    return bytes.toString("hex");
}

/**
 * Issues a certificate (a random serial, valid from now for the inputs' validityPeriodHours) and
 * returns the state the tls provider gives a SelfSignedCert or LocallySignedCert.
 */
async function issueCertificate(
    inputs: Record<string, unknown>,
    params: Omit<x509.X509CertificateCreateWithKeyParams, "serialNumber" | "notBefore" | "notAfter">,
): Promise<Record<string, unknown>> {
    const { notBefore, notAfter } = validity(inputs.validityPeriodHours as number);
    const cert = await x509.X509CertificateGenerator.create({
        ...params,
        serialNumber: serialNumber(),
        notBefore,
        notAfter,
    });
    return {
        ...inputs,
        certPem: cert.toString("pem") + "\n",
        validityStartTime: notBefore.toISOString(),
        validityEndTime: notAfter.toISOString(),
        readyForRenewal: false,
    };
}

async function mintSelfSignedCert(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { key, algorithm } = await importSigningKey(inputs.privateKeyPem as string);
    const publicKey = await publicKeyOf(inputs.privateKeyPem as string, algorithm);
    const usages = keyUsages((inputs.allowedUses as string[]) ?? []);
    const name = subjectName(inputs.subject as Record<string, unknown>);
    const extensions: x509.Extension[] = [
        new x509.BasicConstraintsExtension(Boolean(inputs.isCaCertificate), undefined, true),
        new x509.KeyUsagesExtension(usages.flags, true),
        ...sanExtension(inputs.dnsNames as string[], inputs.ipAddresses as string[]),
    ];
    if (usages.extended.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(usages.extended, false));
    if (inputs.setSubjectKeyId) extensions.push(await x509.SubjectKeyIdentifierExtension.create(publicKey));
    return issueCertificate(inputs, {
        subject: name,
        issuer: name,
        signingAlgorithm: algorithm,
        publicKey,
        signingKey: key,
        extensions,
    });
}

async function mintCertRequest(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { key, algorithm } = await importSigningKey(inputs.privateKeyPem as string);
    const publicKey = await publicKeyOf(inputs.privateKeyPem as string, algorithm);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: subjectName(inputs.subject as Record<string, unknown>),
        keys: { privateKey: key, publicKey },
        signingAlgorithm: algorithm,
        extensions: sanExtension(inputs.dnsNames as string[], inputs.ipAddresses as string[]),
    });
    return { ...inputs, certRequestPem: csr.toString("pem") + "\n" };
}

async function mintLocallySignedCert(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const csr = new x509.Pkcs10CertificateRequest(inputs.certRequestPem as string);
    if (!(await csr.verify())) throw new Error("mock tls: the CSR's signature does not verify");
    const ca = new x509.X509Certificate(inputs.caCertPem as string);
    const { key, algorithm } = await importSigningKey(inputs.caPrivateKeyPem as string);
    const caPublic = await publicKeyOf(inputs.caPrivateKeyPem as string, algorithm);
    const caSki = ca.getExtension(x509.SubjectKeyIdentifierExtension);
    const usages = keyUsages((inputs.allowedUses as string[]) ?? []);
    const requested = csr.extensions.find(
        (e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension,
    );
    const extensions: x509.Extension[] = [
        new x509.BasicConstraintsExtension(Boolean(inputs.isCaCertificate), undefined, true),
        new x509.KeyUsagesExtension(usages.flags, true),
        caSki
            ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId, false)
            : await x509.AuthorityKeyIdentifierExtension.create(caPublic, false),
    ];
    if (requested) extensions.push(new x509.SubjectAlternativeNameExtension(requested.names.toJSON(), false));
    if (usages.extended.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(usages.extended, false));
    if (inputs.setSubjectKeyId) extensions.push(await x509.SubjectKeyIdentifierExtension.create(csr.publicKey, false));
    return issueCertificate(inputs, {
        subject: csr.subject,
        issuer: ca.subject,
        signingAlgorithm: algorithm,
        publicKey: await csr.publicKey.export(),
        signingKey: key,
        extensions,
    });
}

/** A password as random.RandomPassword makes it from its inputs (special characters unless turned off). */
function randomPassword(inputs: Record<string, unknown>): string {
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if (inputs.special !== false) alphabet += "!@#$%&*()-_=+[]{}<>:?";
    const length = inputs.length as number;
    return Array.from({ length }, () => alphabet[crypto.randomInt(alphabet.length)]).join("");
}

/** Records every resource the program registers and answers like the real providers would. */
export class ConsulMocks implements pulumi.runtime.Mocks {
    readonly resources: RecordedResource[] = [];
    private calls = 0;
    /** Registrations whose state is still being made (a certificate being signed, say). */
    registering = 0;

    /**
     * With `previous` (the mocks of an earlier evaluation), a resource whose type, name and inputs
     * are unchanged gets its earlier state back, as the engine keeps state when nothing changed;
     * so keys, certificates and random values stay put across a "second pulumi up".
     */
    constructor(private readonly previous?: ConsulMocks) {}

    async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
        this.registering++;
        try {
            return await this.register(args);
        } finally {
            this.registering--;
        }
    }

    private async register(
        args: pulumi.runtime.MockResourceArgs,
    ): Promise<{ id: string; state: Record<string, unknown> }> {
        const dependencies = pendingDependencies;
        pendingDependencies = [];
        const deleteBeforeReplace = pendingDeleteBeforeReplace;
        pendingDeleteBeforeReplace = false;
        const ignoreChanges = pendingIgnoreChanges;
        pendingIgnoreChanges = [];
        const retainOnDelete = pendingRetainOnDelete;
        pendingRetainOnDelete = false;
        const order = this.calls++;
        const before = this.previous?.resources.find((r) => r.type === args.type && r.name === args.name);
        // ignoreChanges (top-level properties): the engine keeps the stored value of each one.
        const sent = { ...(args.inputs as Record<string, unknown>) };
        for (const key of ignoreChanges) {
            if (key.includes(".") || key.includes("[")) throw new Error(`mocks: nested ignoreChanges ${key}`);
            if (before !== undefined && key in before.rawInputs) sent[key] = before.rawInputs[key];
        }
        const inputs = unwrapSecrets(sent) as Record<string, unknown>;
        const state =
            before !== undefined && this.keepsState(before, inputs)
                ? before.state
                : await this.stateFor(args.type, args.name, inputs, before, { deleteBeforeReplace });
        this.resources.push({
            type: args.type,
            name: args.name,
            inputs,
            rawInputs: sent,
            state,
            provider: args.provider,
            dependencies,
            order,
            deleteBeforeReplace,
            retainOnDelete,
        });
        return { id: `${args.name}-id`, state };
    }

    /** Whether a resource registered again keeps its earlier state (the engine's "no change"). */
    protected keepsState(before: RecordedResource, inputs: Record<string, unknown>): boolean {
        return JSON.stringify(before.inputs) === JSON.stringify(inputs);
    }

    /** The state a provider returns for a new or changed resource (`before` is the earlier one, if any). */
    protected async stateFor(
        type: string,
        _name: string,
        inputs: Record<string, unknown>,
        _before?: RecordedResource,
        _options: { deleteBeforeReplace: boolean } = { deleteBeforeReplace: false },
    ): Promise<Record<string, unknown>> {
        switch (type) {
            case "tls:index/privateKey:PrivateKey":
                return mintPrivateKey(inputs);
            case "tls:index/selfSignedCert:SelfSignedCert":
                return await mintSelfSignedCert(inputs);
            case "tls:index/certRequest:CertRequest":
                return await mintCertRequest(inputs);
            case "tls:index/locallySignedCert:LocallySignedCert":
                return await mintLocallySignedCert(inputs);
            case "random:index/randomPassword:RandomPassword":
                return { ...inputs, result: randomPassword(inputs) };
            default:
                return { ...inputs };
        }
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        throw new Error(`unexpected invoke ${args.token} in a unit test`);
    }

    ofType(type: string): RecordedResource[] {
        return this.resources.filter((r) => r.type === type);
    }

    byName(name: string): RecordedResource {
        const found = this.resources.find((r) => r.name === name);
        if (!found) throw new Error(`no resource named ${name}; have ${this.resources.map((r) => r.name).join(", ")}`);
        return found;
    }
}

/** Resolves an Output (known, as in `pulumi up`) to its value. */
export function valueOf<T>(output: pulumi.Output<T> | T): Promise<T> {
    if (!pulumi.Output.isInstance(output)) return Promise.resolve(output);
    return new Promise((resolve) => output.apply((v) => resolve(v)));
}

export interface EvaluatedStack {
    readonly mocks: ConsulMocks;
    readonly outputs: Record<string, unknown>;
    /** Names of the stack outputs that are secrets. */
    readonly secretOutputs: Set<string>;
}

/** Reads Pulumi.<stack>.yaml's config for this project as Pulumi hands it to the program. */
export function stackFileConfig(stack: string): { config: Record<string, string>; secretKeys: string[] } {
    const doc = yaml.load(fs.readFileSync(path.join(REPO_ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
        config?: Record<string, unknown>;
    };
    const config: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [fullKey, value] of Object.entries(doc.config ?? {})) {
        const key = fullKey.startsWith(`${PROJECT}:`) ? fullKey.slice(PROJECT.length + 1) : fullKey;
        if (value !== null && typeof value === "object" && "secure" in value) {
            secretKeys.push(key);
            config[key] = String((value as { secure: string }).secure);
        } else {
            config[key] = typeof value === "string" ? value : JSON.stringify(value);
        }
    }
    return { config, secretKeys };
}

/** Pulumi.yaml's config defaults, as the engine hands them to the program (arrays as JSON). */
export function projectDefaults(): Record<string, string> {
    const doc = yaml.load(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8")) as {
        config?: Record<string, { default?: unknown }>;
    };
    const out: Record<string, string> = {};
    for (const [key, spec] of Object.entries(doc.config ?? {})) {
        if (spec.default === undefined) continue;
        out[key] = typeof spec.default === "string" ? spec.default : JSON.stringify(spec.default);
    }
    return out;
}

/** Drops the program's modules from the require cache so the next require re-runs it. */
function forgetProgram(): void {
    for (const id of Object.keys(require.cache)) {
        if (
            id.startsWith(REPO_ROOT) &&
            !id.includes(`${path.sep}node_modules${path.sep}`) &&
            !id.includes(`${path.sep}tests${path.sep}`)
        ) {
            delete require.cache[id];
        }
    }
}

async function settle(mocks: ConsulMocks): Promise<void> {
    // Registrations finish asynchronously; wait until none is in flight and no new resource appears
    // for a few turns (a certificate signed under load can take longer than those turns).
    let last = -1;
    let quiet = 0;
    while (quiet < 5) {
        await new Promise((r) => setTimeout(r, 5));
        if (mocks.resources.length === last && mocks.registering === 0) quiet++;
        else {
            quiet = 0;
            last = mocks.resources.length;
        }
    }
}

/**
 * Runs the program (index.ts) under fresh mocks with this config (keys without the project
 * prefix) and returns what it registered and exported.
 */
export async function evaluateProgram(
    config: Record<string, string>,
    options: { stack?: string; secretKeys?: string[]; preview?: boolean; mocks?: ConsulMocks } = {},
): Promise<EvaluatedStack> {
    const stack = options.stack ?? "test";
    // As the engine does: every key Pulumi.yaml gives a default reaches the program as if set.
    const withDefaults = { ...projectDefaults(), ...config };
    const prefixed = Object.fromEntries(Object.entries(withDefaults).map(([k, v]) => [`${PROJECT}:${k}`, v]));
    pulumi.runtime.setAllConfig(
        prefixed,
        (options.secretKeys ?? []).map((k) => `${PROJECT}:${k}`),
    );
    const mocks = options.mocks ?? new ConsulMocks();
    await pulumi.runtime.setMocks(mocks, PROJECT, stack, options.preview ?? false);
    forgetProgram();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const program = require(path.join(REPO_ROOT, "index")) as Record<string, unknown>;
    const outputs: Record<string, unknown> = {};
    const secretOutputs = new Set<string>();
    for (const [name, value] of Object.entries(program)) {
        outputs[name] = await valueOf(value);
        if (pulumi.Output.isInstance(value) && (await pulumi.isSecret(value))) secretOutputs.add(name);
    }
    await settle(mocks);
    return { mocks, outputs, secretOutputs };
}

/** A throwaway HOME with the SSH key the stack files reference, so they evaluate as written. */
export function withOperatorHome(): { home: string; restore: () => void } {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "consul-home-"));
    fs.mkdirSync(path.join(home, ".ssh"), { mode: 0o700 });
    const { privateKey } = crypto.generateKeyPairSync("ed25519");
    fs.writeFileSync(path.join(home, ".ssh", "consul_ed25519"), privateKey.export({ type: "pkcs8", format: "pem" }), {
        mode: 0o600,
    });
    const previous = process.env.HOME;
    process.env.HOME = home;
    return {
        home,
        restore: () => {
            process.env.HOME = previous;
            fs.rmSync(home, { recursive: true, force: true });
        },
    };
}
