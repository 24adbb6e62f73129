// The policies of the pack, as plain objects so tests can call validateResource/validateStack
// directly (constructing a PolicyPack starts the analyzer's gRPC server, so index.ts alone does it).
//
// They read the resources as this program registers them: Consul agent config is JSON in a
// ConfigMap (Kubernetes) or a file in the base64 line bundle a remote.Command gets on stdin (VMs,
// see components/node-scripts.ts renderBundle); the gossip key and tokens live in a separate
// secret fragment (a Secret's secret.json, or /etc/consul.d/secrets.json in the bundle).

import {
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
} from "@pulumi/policy";
import { STARTUP_ONLY_KEYS } from "../components/agent/config";
import { gossipKeyFromSeed, tokenFromSeed } from "../components/security/secret-seeds";
import { isDevelopmentStack } from "../components/config/stack-kind";

export const TYPES = {
    configMap: "kubernetes:core/v1:ConfigMap",
    secret: "kubernetes:core/v1:Secret",
    statefulSet: "kubernetes:apps/v1:StatefulSet",
    daemonSet: "kubernetes:apps/v1:DaemonSet",
    deployment: "kubernetes:apps/v1:Deployment",
    replicaSet: "kubernetes:apps/v1:ReplicaSet",
    job: "kubernetes:batch/v1:Job",
    cronJob: "kubernetes:batch/v1:CronJob",
    pod: "kubernetes:core/v1:Pod",
    command: "command:remote:Command",
    privateKey: "tls:index/privateKey:PrivateKey",
    selfSignedCert: "tls:index/selfSignedCert:SelfSignedCert",
    locallySignedCert: "tls:index/locallySignedCert:LocallySignedCert",
    randomPassword: "random:index/randomPassword:RandomPassword",
} as const;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
    return value !== null && typeof value === "object" && !Array.isArray(value);
}

function parseJson(text: unknown): Json | undefined {
    if (typeof text !== "string") return undefined;
    try {
        const value: unknown = JSON.parse(text);
        return isObject(value) ? value : undefined;
    } catch {
        return undefined;
    }
}

/** The stack name from a URN (`urn:pulumi:<stack>::<project>::...`). */
export function stackOfUrn(urn: string): string {
    const match = /^urn:pulumi:([^:]+)::/.exec(urn);
    return match ? match[1] : "";
}

/** One file of a VM command's stdin bundle: `<path> <mode> <owner> <group> <base64>` per line. */
export function bundleFiles(bundle: unknown): Map<string, string> {
    const files = new Map<string, string>();
    if (typeof bundle !== "string") return files;
    for (const line of bundle.split("\n")) {
        const parts = line.trim().split(" ");
        if (parts.length !== 5 || !parts[0].startsWith("/")) continue;
        files.set(parts[0], Buffer.from(parts[4], "base64").toString("utf8"));
    }
    return files;
}

/** A main agent config has these; a secret fragment (encrypt, acl.tokens) has none of them. */
function looksLikeAgentConfig(config: Json): boolean {
    return "datacenter" in config && "data_dir" in config;
}

function looksLikeSecretFragment(config: Json): boolean {
    return "encrypt" in config && !looksLikeAgentConfig(config);
}

/** String values of a Secret's data (base64) and stringData, by key. */
function secretValues(props: Json): Map<string, string> {
    const values = new Map<string, string>();
    if (isObject(props.data)) {
        for (const [k, v] of Object.entries(props.data)) {
            if (typeof v === "string") values.set(k, Buffer.from(v, "base64").toString("utf8"));
        }
    }
    if (isObject(props.stringData)) {
        for (const [k, v] of Object.entries(props.stringData)) if (typeof v === "string") values.set(k, v);
    }
    return values;
}

export interface Found {
    /** Where it was found, for the violation message. */
    readonly where: string;
    readonly config: Json;
}

/** Every Consul agent main config this resource carries. */
export function agentConfigs(type: string, props: Json): Found[] {
    const found: Found[] = [];
    if (type === TYPES.configMap && isObject(props.data)) {
        for (const [key, value] of Object.entries(props.data)) {
            const config = parseJson(value);
            if (config && looksLikeAgentConfig(config)) found.push({ where: `data["${key}"]`, config });
        }
    }
    if (type === TYPES.command) {
        // The agent reads its main config and its startup-only file (join.json) as one config.
        const files = bundleFiles(props.stdin);
        const startupOnly = [...files.values()]
            .map((content) => parseJson(content))
            .filter((c): c is Json => c !== undefined && isStartupOnly(c));
        for (const [path, content] of files) {
            const config = parseJson(content);
            if (config && looksLikeAgentConfig(config)) {
                found.push({ where: `stdin file ${path}`, config: Object.assign({}, config, ...startupOnly) as Json });
            }
        }
    }
    return found;
}

function isStartupOnly(config: Json): boolean {
    const keys = Object.keys(config);
    return keys.length > 0 && keys.every((k) => (STARTUP_ONLY_KEYS as readonly string[]).includes(k));
}

/** Every secret fragment (gossip key, tokens) this resource carries. */
export function secretFragments(type: string, props: Json): Found[] {
    const found: Found[] = [];
    if (type === TYPES.secret) {
        for (const [key, value] of secretValues(props)) {
            const config = parseJson(value);
            if (config && looksLikeSecretFragment(config)) found.push({ where: `secret key "${key}"`, config });
        }
    }
    if (type === TYPES.command) {
        for (const [path, content] of bundleFiles(props.stdin)) {
            const config = parseJson(content);
            if (config && looksLikeSecretFragment(config)) found.push({ where: `stdin file ${path}`, config });
        }
    }
    return found;
}

/** The pod spec of a workload, whatever its kind. */
export function podSpecOf(type: string, props: Json): Json | undefined {
    const spec = props.spec;
    if (!isObject(spec)) return undefined;
    if (type === TYPES.pod) return spec;
    if (type === TYPES.cronJob) {
        const jobTemplate = spec.jobTemplate;
        const jobSpec = isObject(jobTemplate) ? jobTemplate.spec : undefined;
        const template = isObject(jobSpec) ? jobSpec.template : undefined;
        return isObject(template) && isObject(template.spec) ? template.spec : undefined;
    }
    const workloads: string[] = [TYPES.statefulSet, TYPES.daemonSet, TYPES.deployment, TYPES.replicaSet, TYPES.job];
    if (!workloads.includes(type)) return undefined;
    const template = spec.template;
    return isObject(template) && isObject(template.spec) ? template.spec : undefined;
}

export interface NamedContainer {
    readonly where: string;
    readonly container: Json;
}

export function containersOf(type: string, props: Json): NamedContainer[] {
    const pod = podSpecOf(type, props);
    if (!pod) return [];
    const list: NamedContainer[] = [];
    for (const field of ["initContainers", "containers"]) {
        const containers = pod[field];
        if (!Array.isArray(containers)) continue;
        for (const c of containers) {
            if (isObject(c)) list.push({ where: `${field} "${String(c.name)}"`, container: c });
        }
    }
    return list;
}

function labelsOf(props: Json): Json {
    const metadata = props.metadata;
    return isObject(metadata) && isObject(metadata.labels) ? metadata.labels : {};
}

/** A workload of this project (labels from components/k8s-manifests.ts) or one running a consul image. */
function isConsulContainer(props: Json, container: Json): boolean {
    const labels = labelsOf(props);
    if (labels["app.kubernetes.io/part-of"] === "consul" || labels["app.kubernetes.io/name"] === "consul") return true;
    return typeof container.image === "string" && /(^|\/)consul(:|@|$)/.test(container.image);
}

/** The command line strings of a container (command, args and literal env values). */
function containerStrings(container: Json): { where: string; value: string }[] {
    const out: { where: string; value: string }[] = [];
    for (const field of ["command", "args"]) {
        const list = container[field];
        if (Array.isArray(list)) {
            list.forEach((v, i) => {
                if (typeof v === "string") out.push({ where: `${field}[${i}]`, value: v });
            });
        }
    }
    if (Array.isArray(container.env)) {
        for (const e of container.env) {
            if (isObject(e) && typeof e.value === "string")
                out.push({ where: `env ${String(e.name)}`, value: e.value });
        }
    }
    return out;
}

const COMMAND_FIELDS = ["create", "update", "delete"] as const;

function get(config: Json, ...path: string[]): unknown {
    let value: unknown = config;
    for (const key of path) value = isObject(value) ? value[key] : undefined;
    return value;
}

/** Decodes to 16, 24 or 32 bytes of standard base64, as the agent accepts. */
export function isValidGossipKey(value: unknown): boolean {
    if (typeof value !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) return false;
    return [16, 24, 32].includes(Buffer.from(value, "base64").length);
}

// Curl without certificate verification: -k / --insecure, alone or among short flags (-sSk).
const CURL_INSECURE = /\bcurl\b[^\n;|&]*\s(--insecure\b|-[A-Za-z]*k[A-Za-z]*\b)/;

// ---------------------------------------------------------------------------------------------

export const tlsVerification: ResourceValidationPolicy = {
    name: "consul-tls-verification",
    description:
        "Consul agents verify TLS: outgoing connections and server hostnames always, incoming RPC on servers; no tool skips verification.",
    enforcementLevel: "mandatory",
    validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
        for (const { where, config } of agentConfigs(args.type, args.props)) {
            const problems: string[] = [];
            if (!get(config, "tls", "defaults", "ca_file")) problems.push("tls.defaults.ca_file is not set");
            if (get(config, "tls", "defaults", "verify_outgoing") !== true)
                problems.push("tls.defaults.verify_outgoing is not true");
            if (get(config, "tls", "internal_rpc", "verify_server_hostname") !== true)
                problems.push("tls.internal_rpc.verify_server_hostname is not true");
            if (config.server === true && get(config, "tls", "internal_rpc", "verify_incoming") !== true)
                problems.push("tls.internal_rpc.verify_incoming is not true on a server");
            for (const legacy of ["verify_outgoing", "verify_incoming", "verify_server_hostname"]) {
                if (config[legacy] === false) problems.push(`the deprecated top-level ${legacy} is false`);
            }
            for (const p of problems) report(`${where}: ${p}.`);
        }
        for (const { where, container } of containersOf(args.type, args.props)) {
            if (Array.isArray(container.env)) {
                for (const e of container.env) {
                    if (isObject(e) && e.name === "CONSUL_HTTP_SSL_VERIFY" && String(e.value).toLowerCase() === "false")
                        report(`${where}: CONSUL_HTTP_SSL_VERIFY=false turns off certificate verification.`);
                }
            }
            for (const { where: field, value } of containerStrings(container)) {
                if (CURL_INSECURE.test(value)) report(`${where} ${field}: curl without certificate verification.`);
            }
        }
        if (args.type === TYPES.command) {
            for (const field of COMMAND_FIELDS) {
                const value: unknown = args.props[field];
                if (typeof value === "string" && CURL_INSECURE.test(value))
                    report(`${field}: curl without certificate verification.`);
            }
        }
    },
};

export const gossipEncryption: ResourceValidationPolicy = {
    name: "consul-gossip-encryption",
    description:
        "Gossip is encrypted: agents verify incoming and outgoing gossip encryption, and every secret fragment holds a valid key.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        const configs = agentConfigs(args.type, args.props);
        for (const { where, config } of configs) {
            for (const key of ["encrypt_verify_incoming", "encrypt_verify_outgoing"]) {
                if (config[key] !== true) report(`${where}: ${key} is not true.`);
            }
        }
        const fragments = secretFragments(args.type, args.props);
        for (const { where, config } of fragments) {
            if (!isValidGossipKey(config.encrypt))
                report(`${where}: encrypt is not a base64 key of 16, 24 or 32 bytes (consul keygen makes one).`);
        }
        // A VM host's bundle must carry the key next to the config.
        if (args.type === TYPES.command && configs.length > 0 && fragments.length === 0) {
            report("stdin: an agent config without a secret fragment holding the gossip key (encrypt).");
        }
    },
};

export const aclDefaultDeny: ResourceValidationPolicy = {
    name: "consul-acl-default-deny",
    description: "Outside dev/test stacks, ACLs are enabled with default_policy deny.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        if (isDevelopmentStack(stackOfUrn(args.urn))) return;
        for (const { where, config } of agentConfigs(args.type, args.props)) {
            if (get(config, "acl", "enabled") !== true) report(`${where}: acl.enabled is not true.`);
            if (get(config, "acl", "default_policy") !== "deny")
                report(
                    `${where}: acl.default_policy is ${JSON.stringify(get(config, "acl", "default_policy"))}, not "deny".`,
                );
        }
    },
};

export const pinnedSshHostKeys: ResourceValidationPolicy = {
    name: "consul-pinned-ssh-host-keys",
    description:
        "Outside development stacks, every remote command's SSH connection pins the host key: the stdin bundle carries the gossip key, TLS keys and tokens.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        if (args.type !== TYPES.command || isDevelopmentStack(stackOfUrn(args.urn))) return;
        const connection = isObject(args.props.connection) ? args.props.connection : {};
        const hostKey = connection.hostKey;
        if (typeof hostKey !== "string" || !/^\S+ AAAA\S+$/.test(hostKey.trim()))
            report(`connection to ${String(connection.host)} accepts any host key (connection.hostKey is not set).`);
    },
};

function isOdd(value: unknown): boolean {
    return typeof value === "number" && Number.isInteger(value) && value >= 1 && value % 2 === 1;
}

export const oddServerCount: ResourceValidationPolicy = {
    name: "consul-odd-server-count",
    description:
        "An odd number of Consul servers (bootstrap_expect and StatefulSet replicas): an even count adds no failure tolerance.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        for (const { where, config } of agentConfigs(args.type, args.props)) {
            if (config.server === true && !isOdd(config.bootstrap_expect))
                report(`${where}: bootstrap_expect ${JSON.stringify(config.bootstrap_expect)} is not an odd count.`);
        }
        if (args.type === TYPES.statefulSet) {
            const labels = labelsOf(args.props);
            if (labels["app.kubernetes.io/name"] === "consul" && labels["app.kubernetes.io/component"] === "server") {
                const replicas = get(args.props, "spec", "replicas");
                if (!isOdd(replicas)) report(`spec.replicas ${JSON.stringify(replicas)} is not an odd count.`);
            }
        }
    },
};

export const containerResources: ResourceValidationPolicy = {
    name: "consul-container-resources",
    description: "Every Consul container (and init container) sets CPU and memory requests and limits.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        for (const { where, container } of containersOf(args.type, args.props)) {
            if (!isConsulContainer(args.props, container)) continue;
            const missing: string[] = [];
            for (const kind of ["requests", "limits"]) {
                for (const resource of ["cpu", "memory"]) {
                    if (!get(container, "resources", kind, resource)) missing.push(`${kind}.${resource}`);
                }
            }
            if (missing.length > 0) report(`${where}: no resources ${missing.join(", ")}.`);
        }
    },
};

// Text that is a Consul secret whatever its value: keys, token headers, the secret fragment's keys.
const SECRET_TEXT: readonly [RegExp, string][] = [
    [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key"],
    [/X-Consul-Token:\s*[0-9a-fA-F-]{8,}/, "an ACL token header"],
    [/(^|\s)-?-encrypt[= ]/, "the gossip key as a command-line flag"],
    [/"encrypt"\s*:/, "the gossip key (encrypt)"],
    [/"initial_management"\s*:|"agent_recovery"\s*:/, "an ACL token"],
    [/"SecretID"\s*:\s*"[0-9a-fA-F-]{8,}/, "an ACL token SecretID"],
];

// Env vars that hold credentials; they must come from a Secret (valueFrom), never a literal.
const SECRET_ENV = /^(CONSUL_HTTP_TOKEN|CONSUL_GOSSIP_KEY|CONSUL_ENCRYPT_KEY|CONSUL_CLIENT_KEY_PEM)$/;

function secretTextIn(value: string): string | undefined {
    for (const [pattern, what] of SECRET_TEXT) if (pattern.test(value)) return what;
    return undefined;
}

export const noSecretInConfigMapOrArgs: ResourceValidationPolicy = {
    name: "consul-no-secret-in-configmap-or-args",
    description:
        "No Consul secret (gossip key, ACL token, private key) in a ConfigMap, a container's command, args or literal env, or a remote command line (secrets go on stdin).",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        if (args.type === TYPES.configMap) {
            for (const field of ["data", "binaryData"]) {
                const data: unknown = args.props[field];
                if (!isObject(data)) continue;
                for (const [key, raw] of Object.entries(data)) {
                    if (typeof raw !== "string") continue;
                    const value = field === "binaryData" ? Buffer.from(raw, "base64").toString("utf8") : raw;
                    const what = secretTextIn(value);
                    if (what) report(`${field}["${key}"] holds ${what}; put it in a Secret.`);
                    const config = parseJson(value);
                    if (config && isObject(get(config, "acl", "tokens")))
                        report(`${field}["${key}"] holds acl.tokens; put them in a Secret.`);
                }
            }
        }
        for (const { where, container } of containersOf(args.type, args.props)) {
            for (const { where: field, value } of containerStrings(container)) {
                const what = secretTextIn(value);
                if (what) report(`${where} ${field} holds ${what}; mount it from a Secret.`);
            }
            if (Array.isArray(container.env)) {
                for (const e of container.env) {
                    if (isObject(e) && typeof e.name === "string" && SECRET_ENV.test(e.name) && e.value !== undefined)
                        report(`${where} env ${e.name} is a literal; use valueFrom.secretKeyRef.`);
                }
            }
        }
        if (args.type === TYPES.command) {
            for (const field of [...COMMAND_FIELDS, "environment"] as const) {
                const value: unknown = args.props[field];
                const text = typeof value === "string" ? value : isObject(value) ? JSON.stringify(value) : undefined;
                const what = text === undefined ? undefined : secretTextIn(text);
                if (what) report(`${field} holds ${what}; pass secrets on stdin.`);
            }
        }
    },
};

// ---------------------------------------------------------------------------------------------
// Stack policies: they know the actual secret values, so they catch a leak in any form.

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

/** Where a resource may hold the CA key: its own output, and the two signers' inputs. */
const CA_KEY_HOLDERS: Readonly<Record<string, string>> = {
    [TYPES.privateKey]: "privateKeyPem",
    [TYPES.selfSignedCert]: "privateKeyPem",
    [TYPES.locallySignedCert]: "caPrivateKeyPem",
};

export const caKeyConfined: StackValidationPolicy = {
    name: "consul-ca-key-confined",
    description: "The CA private key is an input of the certificate signers only (SelfSignedCert, LocallySignedCert).",
    enforcementLevel: "mandatory",
    validateStack: (args: StackValidationArgs, report: ReportViolation) => {
        const caKeys = args.resources
            .filter((r) => r.type === TYPES.selfSignedCert && r.props.isCaCertificate === true)
            .map((r) => r.props.privateKeyPem as unknown)
            .filter((pem): pem is string => typeof pem === "string" && pem.includes("PRIVATE KEY"))
            .map(pemBody);
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

/** The secret values this stack generated (gossip key, ACL token IDs, private keys), 16 characters or more. */
export function knownSecrets(resources: readonly PolicyResource[]): string[] {
    return resources.flatMap((r) => generatedSecrets(r.type, r.props)).filter((s) => s.length >= 16);
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
        "The gossip key, ACL tokens and private keys this stack generates appear in no ConfigMap, container command line or remote command line.",
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

export const resourcePolicies: readonly ResourceValidationPolicy[] = [
    tlsVerification,
    gossipEncryption,
    aclDefaultDeny,
    pinnedSshHostKeys,
    oddServerCount,
    containerResources,
    noSecretInConfigMapOrArgs,
];

export const stackPolicies: readonly StackValidationPolicy[] = [caKeyConfined, noKnownSecretExposed];
