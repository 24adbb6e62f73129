// How the policies read resources as this program registers them: Consul agent config is JSON in a
// ConfigMap (Kubernetes) or a file in the base64 line bundle a remote.Command gets on stdin (VMs,
// see components/vm/bundle.ts renderBundle); the gossip key and tokens live in separate secret
// fragments (a Secret's secret.json; /etc/consul.d/gossip.json and secrets.json in the bundle).

import { STARTUP_ONLY_KEYS } from "../components/agent";

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
    stackReference: "pulumi:pulumi:StackReference",
} as const;

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
    return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function parseJson(text: unknown): Json | undefined {
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
export function looksLikeAgentConfig(config: Json): boolean {
    return "datacenter" in config && "data_dir" in config;
}

export function looksLikeSecretFragment(config: Json): boolean {
    return "encrypt" in config && !looksLikeAgentConfig(config);
}

/** String values of a Secret's data (base64) and stringData, by key. */
export function secretValues(props: Json): Map<string, string> {
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
    if (type === TYPES.configMap && isObject(props.data)) {
        const entries = Object.entries(props.data).filter((e): e is [string, string] => typeof e[1] === "string");
        return withStartupOnly(entries.map(([key, value]) => [`data["${key}"]`, value]));
    }
    if (type === TYPES.command) {
        return withStartupOnly([...bundleFiles(props.stdin)].map(([path, content]) => [`stdin file ${path}`, content]));
    }
    return [];
}

/**
 * The agent configs among one resource's files, each with the startup-only file beside it merged
 * in: the agent reads them as one config (a VM host's join.json, a ConfigMap's startup-only.json).
 */
function withStartupOnly(files: [where: string, content: string][]): Found[] {
    const parsed = files.map(([where, content]) => ({ where, config: parseJson(content) }));
    const startupOnly = parsed.map((f) => f.config).filter((c): c is Json => c !== undefined && isStartupOnly(c));
    return parsed
        .filter((f): f is Found => f.config !== undefined && looksLikeAgentConfig(f.config))
        .map((f) => ({ where: f.where, config: Object.assign({}, f.config, ...startupOnly) as Json }));
}

export function isStartupOnly(config: Json): boolean {
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

export function labelsOf(props: Json): Json {
    const metadata = props.metadata;
    return isObject(metadata) && isObject(metadata.labels) ? metadata.labels : {};
}

/** A workload of this project (labels from components/kubernetes/manifests/common.ts) or one running a consul image. */
export function isConsulContainer(props: Json, container: Json): boolean {
    const labels = labelsOf(props);
    if (labels["app.kubernetes.io/part-of"] === "consul" || labels["app.kubernetes.io/name"] === "consul") return true;
    return typeof container.image === "string" && /(^|\/)consul(:|@|$)/.test(container.image);
}

/** The command line strings of a container (command, args and literal env values). */
export function containerStrings(container: Json): { where: string; value: string }[] {
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

export const COMMAND_FIELDS = ["create", "update", "delete"] as const;

export function get(config: Json, ...path: string[]): unknown {
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
export const CURL_INSECURE = /\bcurl\b[^\n;|&]*\s(--insecure\b|-[A-Za-z]*k[A-Za-z]*\b)/;
