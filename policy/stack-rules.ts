// Stack policies: they know the actual secret values, so they catch a leak in any form.

import { PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { gossipKeyFromSeed, tokenFromSeed } from "../components/security";
import { TYPES, isObject, containersOf, containerStrings, COMMAND_FIELDS } from "./inspect";

/** Every string in a value, plus what base64-looking strings (and bundle fields) decode to. */
export function stringsIn(value: unknown): string[] {
    const out: string[] = [];
    const visit = (v: unknown): void => {
        if (typeof v === "string") {
            out.push(v);
            for (const token of v.split(/\s+/)) {
                if (token.length >= 24 && /^[A-Za-z0-9+/]+={0,2}$/.test(token)) {
                    out.push(Buffer.from(token, "base64").toString("utf8"));
                }
            }
        } else if (Array.isArray(v)) v.forEach(visit);
        else if (isObject(v)) Object.values(v).forEach(visit);
    };
    visit(value);
    return out;
}

/** A PEM's base64 body without whitespace: what identifies the key in any re-wrapped form. */
export function pemBody(pem: string): string {
    return pem
        .split("\n")
        .filter((line) => !line.startsWith("-----"))
        .join("")
        .replace(/\s+/g, "");
}

function containsKey(value: unknown, body: string): boolean {
    return stringsIn(value).some((s) => s.replace(/\s+/g, "").includes(body));
}

/** Where a resource may hold the CA key: its own output, the two signers' inputs, the primary's output. */
const CA_KEY_HOLDERS: Readonly<Record<string, string>> = {
    [TYPES.privateKey]: "privateKeyPem",
    [TYPES.selfSignedCert]: "privateKeyPem",
    [TYPES.locallySignedCert]: "caPrivateKeyPem",
    [TYPES.stackReference]: "outputs",
};

/**
 * A federation secondary's view of its primary's `federation` output (components/federation), as
 * its StackReference holds it: the intermediate CA keys (this stack's signing CA) and the shared
 * secrets it did not generate itself.
 */
function federationSecrets(resources: readonly PolicyResource[]): { caKeys: string[]; secrets: string[] } {
    const caKeys: string[] = [];
    const secrets: string[] = [];
    for (const r of resources.filter((x) => x.type === TYPES.stackReference)) {
        const outputs = isObject(r.props.outputs) ? r.props.outputs : {};
        const federation = isObject(outputs.federation) ? outputs.federation : {};
        for (const field of ["gossipKey", "replicationToken"]) {
            if (typeof federation[field] === "string") secrets.push(federation[field]);
        }
        const intermediates = isObject(federation.intermediates) ? federation.intermediates : {};
        for (const issued of Object.values(intermediates)) {
            if (isObject(issued) && typeof issued.keyPem === "string") caKeys.push(pemBody(issued.keyPem));
        }
    }
    return { caKeys, secrets: [...secrets, ...caKeys] };
}

export const caKeyConfined: StackValidationPolicy = {
    name: "consul-ca-key-confined",
    description:
        "The CA private key (a federation secondary's: its intermediate's) is an input of the certificate signers only (SelfSignedCert, LocallySignedCert).",
    enforcementLevel: "mandatory",
    validateStack: (args: StackValidationArgs, report: ReportViolation) => {
        const caKeys = args.resources
            .filter((r) => r.type === TYPES.selfSignedCert && r.props.isCaCertificate === true)
            .map((r) => r.props.privateKeyPem as unknown)
            .filter((pem): pem is string => typeof pem === "string" && pem.includes("PRIVATE KEY"))
            .map(pemBody)
            .concat(federationSecrets(args.resources).caKeys);
        if (caKeys.length === 0) return;
        for (const resource of args.resources) {
            const allowedField = CA_KEY_HOLDERS[resource.type];
            const props = { ...resource.props };
            if (allowedField) delete props[allowedField];
            if (caKeys.some((body) => containsKey(props, body)))
                report(`${resource.type} ${resource.name} holds the CA private key.`, resource.urn);
        }
    },
};

/**
 * The secret values one resource generated, from its type and properties: a RandomPassword's seed
 * and the gossip key and token ID derived from it (components/security/secret-seeds.ts), a private
 * key's PEM body. Shared with the unit tests, which read the same values from the mocks' state.
 */
export function generatedSecrets(type: string, props: Readonly<Record<string, unknown>>): string[] {
    if (type === TYPES.randomPassword && typeof props.result === "string")
        return [props.result, gossipKeyFromSeed(props.result), tokenFromSeed(props.result)];
    if (type === TYPES.privateKey && typeof props.privateKeyPem === "string") return [pemBody(props.privateKeyPem)];
    return [];
}

/**
 * The secret values this stack generated (gossip key, ACL token IDs, private keys) or, a federation
 * secondary, took from its primary; 16 characters or more.
 */
export function knownSecrets(resources: readonly PolicyResource[]): string[] {
    return resources
        .flatMap((r) => generatedSecrets(r.type, r.props))
        .concat(federationSecrets(resources).secrets)
        .filter((s) => s.length >= 16);
}

/** The places a secret must never be: ConfigMaps, container command lines, remote command lines. */
function exposedValues(resource: PolicyResource): { where: string; value: unknown }[] {
    const out: { where: string; value: unknown }[] = [];
    if (resource.type === TYPES.configMap)
        out.push({ where: "data", value: [resource.props.data, resource.props.binaryData] });
    for (const { where, container } of containersOf(resource.type, resource.props)) {
        out.push({ where, value: containerStrings(container).map((s) => s.value) });
    }
    if (resource.type === TYPES.command) {
        for (const field of [...COMMAND_FIELDS, "environment"])
            out.push({ where: field, value: resource.props[field] });
    }
    return out;
}

export const noKnownSecretExposed: StackValidationPolicy = {
    name: "consul-no-known-secret-exposed",
    description:
        "The gossip key, ACL tokens and private keys this stack generates (or takes from its federation primary) appear in no ConfigMap, container command line or remote command line.",
    enforcementLevel: "mandatory",
    validateStack: (args, report) => {
        const secrets = knownSecrets(args.resources);
        if (secrets.length === 0) return;
        for (const resource of args.resources) {
            for (const { where, value } of exposedValues(resource)) {
                const strings = stringsIn(value).map((s) => s.replace(/\s+/g, ""));
                if (secrets.some((secret) => strings.some((s) => s.includes(secret))))
                    report(`${resource.type} ${resource.name} ${where} holds a generated secret.`, resource.urn);
            }
        }
    },
};
