// The one place that reads stack config. `parseSettings` is pure: raw strings in, a typed and fully
// validated Settings object (or every problem at once) out, before any resource exists.

import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { configSchema, ConfigKey, DEFAULT_CONSUL_VERSION } from "./schema";
import { DNS_LABEL, expandHome, HOSTNAME, isIpAddress, Problems, RawValue, readTyped } from "./read";
import { parseHost, readVm } from "./vm";
import { DEVELOPMENT_STACKS, isDevelopmentStack } from "./stack-kind";

export { isIpAddress, parseHost };

export type Topology = "kubernetes" | "vm" | "hybrid";
export const TOPOLOGIES: readonly Topology[] = ["kubernetes", "vm", "hybrid"];

export interface Host {
    /** Consul node name, also the certificate and resource name. */
    readonly name: string;
    /** IP address or DNS name the host is reached at and advertises. */
    readonly address: string;
    readonly addressIsIp: boolean;
    readonly sshPort: number;
}

export interface Ports {
    readonly https: number;
    readonly http: number;
    readonly grpcTls: number;
    readonly dns: number;
    readonly serverRpc: number;
    readonly serfLan: number;
    readonly serfWan: number;
}

export interface Resources {
    readonly cpuRequest: string;
    readonly cpuLimit: string;
    readonly memoryRequest: string;
    readonly memoryLimit: string;
}

export interface KubernetesSettings {
    readonly namespace: string;
    readonly createNamespace: boolean;
    readonly kubeconfig?: string;
    readonly context?: string;
    readonly image: string;
    readonly storageClass?: string;
    readonly storageSize: string;
    readonly pvcRetentionWhenDeleted: "Retain" | "Delete";
    readonly pvcRetentionWhenScaled: "Retain" | "Delete";
    readonly antiAffinity: "required" | "preferred";
    readonly uiServiceType: "ClusterIP" | "NodePort" | "LoadBalancer";
    readonly updatePartition: number;
    readonly serverResources: Resources;
    readonly clientResources: Resources;
    readonly clientsEnabled: boolean;
    readonly clientNetworkMode: "hostNetwork" | "hostPort";
    readonly clientDataHostPath: string;
    readonly clientTolerateAll: boolean;
    readonly clientSelfRegister: boolean;
    /** Namespaces that get a consul-ca ConfigMap for their applications. */
    readonly appNamespaces: readonly string[];
}

export interface Bastion {
    readonly host: string;
    readonly port: number;
    readonly user: string;
}

export interface VmSettings {
    readonly servers: readonly Host[];
    readonly clients: readonly Host[];
    readonly sshUser: string;
    /** The private key text, a Pulumi secret. */
    readonly sshPrivateKey: pulumi.Output<string>;
    readonly bastion?: Bastion;
    readonly installMode: "download" | "preinstalled";
    readonly releaseMirrorUrl: string;
    readonly clientBatchSize: number;
    /** Pinned SSH host keys by node name ("<type> <base64>"). */
    readonly hostKeys?: Readonly<Record<string, string>>;
    /** Listed hosts whose machines are gone: pruned from the cluster, never contacted. */
    readonly deadHosts: readonly string[];
}

export interface Settings {
    readonly project: string;
    readonly stack: string;
    readonly topology: Topology;
    readonly datacenter: string;
    readonly domain: string;
    readonly consulVersion: string;
    readonly serverCount: number;
    readonly logLevel: "trace" | "debug" | "info" | "warn" | "error";
    readonly raftMultiplier: number;
    readonly ports: Ports;
    readonly acl: {
        readonly enabled: boolean;
        readonly defaultPolicy: "allow" | "deny";
        readonly downPolicy: "allow" | "deny" | "extend-cache" | "async-cache";
    };
    readonly tls: {
        readonly caValidityHours: number;
        readonly certValidityHours: number;
        readonly earlyRenewalHours: number;
    };
    readonly gossipKeyKeeper: string;
    readonly telemetry: { readonly enabled: boolean; readonly retention: string };
    /** Set for the kubernetes and hybrid topologies. */
    readonly kubernetes?: KubernetesSettings;
    /** Set for the vm and hybrid topologies. */
    readonly vm?: VmSettings;
    /** What the operator should know that is not a problem (a preview without the SSH key, say). */
    readonly notes: readonly string[];
}

/** Thrown with every problem found; its message is what `pulumi preview` shows. */
export class ConfigError extends pulumi.RunError {
    constructor(readonly problems: readonly string[]) {
        super(
            `Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}); nothing was changed:\n` +
                problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+ent)?$/;
// Kubernetes quantity grammar (resource.Quantity), without the signs we never want here.
const QUANTITY = /^(\d+(\.\d+)?|\.\d+)(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E|[eE]\d+)?$/;
const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
// Image reference: [registry[:port]/]path[:tag][@digest]
const IMAGE_REF =
    /^([a-z0-9.-]+(:\d+)?\/)?[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

const QUANTITY_SUFFIX: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
};

/** A Kubernetes quantity in base units (cores or bytes), or undefined if it is not one. */
export function parseQuantity(text: string): number | undefined {
    const match = QUANTITY.exec(text);
    if (!match) return undefined;
    const suffix = match[3] ?? "";
    const base = parseFloat(match[1]);
    if (/^[eE]\d+$/.test(suffix)) return base * 10 ** parseInt(suffix.slice(1), 10);
    return base * (suffix === "" ? 1 : QUANTITY_SUFFIX[suffix]);
}

/**
 * Turns raw stack config (key without project prefix → string, as Pulumi stores it) into Settings.
 * Throws ConfigError listing every problem.
 */
export function parseSettings(
    raw: Record<string, string>,
    project: string,
    stack: string,
    context: { preview?: boolean; secretKeys?: ReadonlySet<string> } = {},
): Settings {
    const key = (k: string) => `${project}:${k}`;
    const problems = new Problems(new Set([...(context.secretKeys ?? [])].map(key)));

    for (const name of Object.keys(raw)) {
        // Own keys only: "toString" or "__proto__" are not config keys.
        if (!Object.prototype.hasOwnProperty.call(configSchema, name)) {
            const hint = closestKey(name);
            // The value is not shown: a misspelt key may hold a secret (sshPrivatekey, say).
            problems.add(
                key(name),
                "[not shown]",
                `unknown key; ${hint ? `did you mean ${key(hint)}? ` : ""}remove it or use one of the keys in Pulumi.yaml.`,
            );
        }
    }

    const typed = new Map<ConfigKey, RawValue | undefined>();
    for (const name of Object.keys(configSchema) as ConfigKey[]) {
        typed.set(name, readTyped(name, raw[name], problems, key(name)));
    }
    const get = <T extends RawValue>(name: ConfigKey): T => typed.get(name) as T;
    const str = (name: ConfigKey) => get<string>(name);
    const int = (name: ConfigKey) => get<number>(name);
    const bool = (name: ConfigKey) => get<boolean>(name);
    const oneOf = <T extends string>(name: ConfigKey, allowed: readonly T[]): T => {
        const value = str(name);
        if (value !== undefined && !allowed.includes(value as T)) {
            problems.add(key(name), value, `must be one of ${allowed.join(", ")}.`);
        }
        return value as T;
    };

    const topology = oneOf("topology", TOPOLOGIES);
    const usesVms = topology === "vm" || topology === "hybrid";
    const usesKubernetes = topology === "kubernetes" || topology === "hybrid";

    const dnsLabel = (name: ConfigKey, what: string) => {
        const value = str(name);
        if (value !== undefined && !DNS_LABEL.test(value)) {
            problems.add(
                key(name),
                value,
                `${what} must be a DNS label: lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit.`,
            );
        }
        return value;
    };
    const datacenter = dnsLabel("datacenter", "the datacenter");
    const domain = dnsLabel("domain", "the domain");

    const consulVersion = str("consulVersion");
    if (consulVersion !== undefined && !SEMVER.test(consulVersion)) {
        problems.add(
            key("consulVersion"),
            consulVersion,
            `must be a Consul release version such as ${DEFAULT_CONSUL_VERSION} (no leading v).`,
        );
    } else if (consulVersion !== undefined && olderThan(consulVersion, MIN_CONSUL_VERSION)) {
        problems.add(
            key("consulVersion"),
            consulVersion,
            `is older than ${MIN_CONSUL_VERSION.join(".")}, the first release with the tls {} config stanza this program writes; use ${DEFAULT_CONSUL_VERSION}.`,
        );
    }

    const serverCount = int("serverCount");
    if (serverCount !== undefined && (serverCount < 1 || serverCount > 7 || serverCount % 2 === 0)) {
        problems.add(
            key("serverCount"),
            serverCount,
            "must be odd and between 1 and 7 (an even count adds no failure tolerance and risks split votes); use 3 or 5.",
        );
    }

    const logLevel = oneOf("logLevel", ["trace", "debug", "info", "warn", "error"] as const);

    const raftMultiplier = int("raftMultiplier");
    if (raftMultiplier !== undefined && (raftMultiplier < 1 || raftMultiplier > 10)) {
        problems.add(key("raftMultiplier"), raftMultiplier, "must be between 1 and 10; use 1 for production.");
    }

    const ports = readPorts(int, problems, key);

    const aclEnabled = bool("aclEnabled");
    const aclDefaultPolicy = oneOf("aclDefaultPolicy", ["allow", "deny"] as const);
    const aclDownPolicy = oneOf("aclDownPolicy", ["allow", "deny", "extend-cache", "async-cache"] as const);
    if (aclEnabled && aclDefaultPolicy === "allow" && !isDevelopmentStack(stack)) {
        problems.add(
            key("aclDefaultPolicy"),
            aclDefaultPolicy,
            `an allow-by-default ACL policy is only accepted in development stacks (named ${DEVELOPMENT_STACKS}), not in stack "${stack}"; set it to deny.`,
        );
    }

    const caValidityHours = int("caValidityHours");
    const certValidityHours = int("certValidityHours");
    const earlyRenewalHours = int("certEarlyRenewalHours");
    if (caValidityHours !== undefined && (caValidityHours < 24 || caValidityHours > 20 * 8760)) {
        problems.add(
            key("caValidityHours"),
            caValidityHours,
            "must be between 24 hours and 20 years (175200); the default is 43800 (5 years).",
        );
    }
    if (certValidityHours !== undefined && (certValidityHours < 24 || certValidityHours > 5 * 8760)) {
        problems.add(
            key("certValidityHours"),
            certValidityHours,
            "must be between 24 and 43800 hours; the default is 8760 (1 year).",
        );
    } else if (
        certValidityHours !== undefined &&
        caValidityHours !== undefined &&
        certValidityHours >= caValidityHours
    ) {
        problems.add(
            key("certValidityHours"),
            certValidityHours,
            `must be shorter than caValidityHours (${caValidityHours}) so no certificate outlives its CA; lower it or raise caValidityHours.`,
        );
    }
    if (earlyRenewalHours !== undefined && certValidityHours !== undefined) {
        if (earlyRenewalHours < 0 || earlyRenewalHours >= certValidityHours) {
            problems.add(
                key("certEarlyRenewalHours"),
                earlyRenewalHours,
                `must be at least 0 and below certValidityHours (${certValidityHours}), or every pulumi up would re-issue certificates; the default is 720 (30 days).`,
            );
        }
    }

    const gossipKeyKeeper = str("gossipKeyKeeper");
    if (gossipKeyKeeper !== undefined && gossipKeyKeeper.trim() === "") {
        problems.add(
            key("gossipKeyKeeper"),
            gossipKeyKeeper,
            "must not be empty; keep the previous value, or any new value to rotate.",
        );
    }

    const telemetryRetention = str("telemetryRetention");
    if (
        telemetryRetention !== undefined &&
        (!GO_DURATION.test(telemetryRetention) || /^0+(\D|$)/.test(telemetryRetention))
    ) {
        problems.add(
            key("telemetryRetention"),
            telemetryRetention,
            "must be a positive Go duration such as 60s or 5m; Prometheus needs metrics kept longer than its scrape interval.",
        );
    }

    const kubernetes = usesKubernetes
        ? readKubernetes(str, int, bool, oneOf, problems, key, consulVersion, (name) => get<string[]>(name) ?? [])
        : undefined;
    const notes: string[] = [];
    const vm = usesVms
        ? readVm(str, int, bool, raw, problems, key, topology, {
              stack,
              preview: context.preview ?? false,
              secretKeys: context.secretKeys,
              notes,
          })
        : undefined;

    const serverCountValid = problems.list.every((p) => !p.startsWith(`${key("serverCount")} `));
    if (
        vm &&
        serverCountValid &&
        serverCount !== undefined &&
        vm.servers.length > 0 &&
        vm.servers.length !== serverCount
    ) {
        problems.add(
            key("serverCount"),
            serverCount,
            `does not match the ${vm.servers.length} entries of ${key("serverHosts")}; set serverCount to ${vm.servers.length} or list ${serverCount} hosts.`,
        );
    }
    if (!usesVms) {
        for (const name of ["serverHosts", "clientHosts"] as const) {
            if (raw[name] !== undefined && (get<string[]>(name) ?? []).length > 0) {
                problems.add(
                    key(name),
                    get(name),
                    `is only used by the vm and hybrid topologies, not ${topology}; remove it or change topology.`,
                );
            }
        }
    }
    if (topology === "hybrid" && vm && vm.clients.length > 0) {
        problems.add(
            key("clientHosts"),
            get("clientHosts"),
            "the hybrid topology runs client agents in Kubernetes, not on clientHosts; remove clientHosts or use topology vm.",
        );
    }

    if (problems.list.length > 0) throw new ConfigError(problems.list);

    return {
        project,
        stack,
        topology,
        datacenter,
        domain,
        consulVersion,
        serverCount: vm ? vm.servers.length : serverCount,
        logLevel,
        raftMultiplier,
        ports,
        acl: { enabled: aclEnabled, defaultPolicy: aclDefaultPolicy, downPolicy: aclDownPolicy },
        tls: { caValidityHours, certValidityHours, earlyRenewalHours },
        gossipKeyKeeper,
        telemetry: { enabled: bool("telemetryEnabled"), retention: telemetryRetention },
        kubernetes,
        vm,
        notes,
    };
}

function readPorts(int: (k: ConfigKey) => number, problems: Problems, key: (k: string) => string): Ports {
    const names: Record<keyof Ports, ConfigKey> = {
        https: "httpsPort",
        http: "httpPort",
        grpcTls: "grpcTlsPort",
        dns: "dnsPort",
        serverRpc: "serverRpcPort",
        serfLan: "serfLanPort",
        serfWan: "serfWanPort",
    };
    const canDisable = new Set<ConfigKey>(["httpPort", "dnsPort"]);
    const seen = new Map<number, ConfigKey>();
    const ports = {} as Record<keyof Ports, number>;
    for (const [field, name] of Object.entries(names) as [keyof Ports, ConfigKey][]) {
        const port = int(name);
        ports[field] = port;
        if (port === undefined) continue;
        if (port === -1 && canDisable.has(name)) continue;
        if (port < 1 || port > 65535) {
            problems.add(
                key(name),
                port,
                `must be a TCP port between 1 and 65535${canDisable.has(name) ? ", or -1 to turn it off" : ""}.`,
            );
            continue;
        }
        const other = seen.get(port);
        if (other) {
            problems.add(key(name), port, `is already used by ${key(other)}; every Consul port must be different.`);
        }
        seen.set(port, name);
    }
    return ports;
}

function readKubernetes(
    str: (k: ConfigKey) => string,
    int: (k: ConfigKey) => number,
    bool: (k: ConfigKey) => boolean,
    oneOf: <T extends string>(k: ConfigKey, allowed: readonly T[]) => T,
    problems: Problems,
    key: (k: string) => string,
    consulVersion: string,
    list: (k: ConfigKey) => string[],
): KubernetesSettings {
    const namespace = str("k8sNamespace");
    if (namespace !== undefined && !DNS_LABEL.test(namespace)) {
        problems.add(
            key("k8sNamespace"),
            namespace,
            "a namespace must be a DNS label (lower-case letters, digits, '-', at most 63 characters).",
        );
    }
    const image = str("image") || `hashicorp/consul:${consulVersion}`;
    if (!IMAGE_REF.test(image)) {
        problems.add(
            key("image"),
            str("image"),
            `is not a container image reference; use e.g. hashicorp/consul:${DEFAULT_CONSUL_VERSION} or registry.example.com/consul@sha256:<digest>.`,
        );
    }
    const kubeconfig = str("k8sKubeconfig");
    if (kubeconfig && !fs.existsSync(expandHome(kubeconfig))) {
        problems.add(
            key("k8sKubeconfig"),
            kubeconfig,
            "no such file; give the path of a kubeconfig, or leave it empty for the ambient one.",
        );
    }

    const storageSize = str("storageSize");
    const bytes = storageSize === undefined ? undefined : parseQuantity(storageSize);
    if (storageSize !== undefined && (bytes === undefined || bytes < 2 ** 20)) {
        problems.add(key("storageSize"), storageSize, "must be a Kubernetes quantity of at least 1Mi, such as 10Gi.");
    }
    const storageClass = str("storageClass");
    if (storageClass && !HOSTNAME.test(storageClass)) {
        problems.add(
            key("storageClass"),
            storageClass,
            "a StorageClass name must be a DNS subdomain (lower-case letters, digits, '-' and '.').",
        );
    }

    const updatePartition = int("updatePartition");
    if (updatePartition !== undefined && updatePartition < 0) {
        problems.add(
            key("updatePartition"),
            updatePartition,
            "must be 0 or more: pods with an ordinal at or above it are updated.",
        );
    }

    const resources = (role: "server" | "client"): Resources => {
        const names = {
            cpuRequest: `${role}CpuRequest`,
            cpuLimit: `${role}CpuLimit`,
            memoryRequest: `${role}MemoryRequest`,
            memoryLimit: `${role}MemoryLimit`,
        } as const satisfies Record<keyof Resources, ConfigKey>;
        const values = {} as Record<keyof Resources, string>;
        const amounts = {} as Record<keyof Resources, number | undefined>;
        for (const [field, name] of Object.entries(names) as [keyof Resources, ConfigKey][]) {
            values[field] = str(name);
            amounts[field] = values[field] === undefined ? undefined : parseQuantity(values[field]);
            if (values[field] !== undefined && (amounts[field] === undefined || amounts[field] === 0)) {
                problems.add(
                    key(name),
                    values[field],
                    `must be a positive Kubernetes quantity such as ${field.startsWith("cpu") ? "500m" : "512Mi"}.`,
                );
            }
        }
        for (const kind of ["cpu", "memory"] as const) {
            const request = amounts[`${kind}Request`];
            const limit = amounts[`${kind}Limit`];
            if (request !== undefined && limit !== undefined && request > limit) {
                problems.add(
                    key(names[`${kind}Request`]),
                    values[`${kind}Request`],
                    `is above ${key(names[`${kind}Limit`])} (${values[`${kind}Limit`]}); Kubernetes rejects requests above limits, so lower the request or raise the limit.`,
                );
            }
        }
        return values;
    };

    const clientDataHostPath = str("clientDataHostPath");
    if (clientDataHostPath !== undefined && (!path.isAbsolute(clientDataHostPath) || clientDataHostPath === "/")) {
        problems.add(
            key("clientDataHostPath"),
            clientDataHostPath,
            "must be an absolute path other than /, such as /var/lib/consul-client.",
        );
    }

    const appNamespaces = list("k8sAppNamespaces");
    for (const ns of appNamespaces) {
        if (!DNS_LABEL.test(ns)) {
            problems.add(
                key("k8sAppNamespaces"),
                ns,
                "each application namespace must be a DNS label (lower-case letters, digits, '-', at most 63 characters).",
            );
        }
    }

    return {
        namespace,
        createNamespace: bool("k8sCreateNamespace"),
        kubeconfig: kubeconfig || undefined,
        context: str("k8sContext") || undefined,
        image,
        storageClass: storageClass || undefined,
        storageSize,
        pvcRetentionWhenDeleted: oneOf("pvcRetentionWhenDeleted", ["Retain", "Delete"] as const),
        pvcRetentionWhenScaled: oneOf("pvcRetentionWhenScaled", ["Retain", "Delete"] as const),
        antiAffinity: oneOf("antiAffinity", ["required", "preferred"] as const),
        uiServiceType: oneOf("uiServiceType", ["ClusterIP", "NodePort", "LoadBalancer"] as const),
        updatePartition,
        serverResources: resources("server"),
        clientResources: resources("client"),
        clientsEnabled: bool("clientsEnabled"),
        clientNetworkMode: oneOf("clientNetworkMode", ["hostNetwork", "hostPort"] as const),
        clientDataHostPath,
        clientTolerateAll: bool("clientTolerateAll"),
        clientSelfRegister: bool("clientSelfRegister"),
        appNamespaces: [...new Set(appNamespaces)],
    };
}

/** The oldest Consul release the generated config works with: `tls {}` arrived in 1.12. */
export const MIN_CONSUL_VERSION = [1, 12, 0] as const;

function olderThan(version: string, minimum: readonly number[]): boolean {
    const parts = version.split(/[.-]/).slice(0, 3).map(Number);
    for (let i = 0; i < minimum.length; i++) {
        if (parts[i] !== minimum[i]) return parts[i] < minimum[i];
    }
    return false;
}

function closestKey(name: string): string | undefined {
    let best: string | undefined;
    let bestDistance = 4;
    for (const candidate of Object.keys(configSchema)) {
        const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
        if (distance < bestDistance) {
            best = candidate;
            bestDistance = distance;
        }
    }
    return best;
}

function editDistance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
        let previous = row[0];
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const current = row[j];
            row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
            previous = current;
        }
    }
    return row[b.length];
}

/** Reads this stack's config from the Pulumi runtime and validates it. */
export function loadSettings(): Settings {
    const project = pulumi.getProject();
    const prefix = `${project}:`;
    const raw: Record<string, string> = {};
    for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (fullKey.startsWith(prefix)) raw[fullKey.slice(prefix.length)] = value;
    }
    const settings = parseSettings(raw, project, pulumi.getStack(), {
        preview: pulumi.runtime.isDryRun(),
        secretKeys: secretConfigKeys(prefix, Object.keys(raw)),
    });
    for (const note of settings.notes) void pulumi.log.info(note);
    return settings;
}

/**
 * Which of these keys were set with --secret. The SDK's isConfigSecret is marked internal (no
 * typings) but is what the engine's secret-key list is read through; without it, say so rather
 * than guess.
 */
function secretConfigKeys(prefix: string, keys: readonly string[]): ReadonlySet<string> {
    const isConfigSecret = (runtimeConfig as { isConfigSecret?: (fullKey: string) => boolean }).isConfigSecret;
    if (typeof isConfigSecret !== "function") {
        throw new pulumi.RunError(
            "this @pulumi/pulumi no longer exposes runtime isConfigSecret; pin the version in package.json.",
        );
    }
    return new Set(keys.filter((k) => isConfigSecret(prefix + k)));
}
