// The typed settings every component reads a slice of, and the error that lists config problems.

import * as pulumi from "@pulumi/pulumi";

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

/** Snapshot backups of the VM servers (snapshotInterval set). */
export interface SnapshotSettings {
    /** A systemd time span, validated. */
    readonly interval: string;
    readonly retain: number;
    readonly s3: {
        readonly endpoint: string;
        readonly bucket: string;
        readonly region: string;
        readonly accessKeyId: string;
        /** A Pulumi secret. */
        readonly secretAccessKey: pulumi.Output<string>;
    };
}

/** DNS on the VM clients; absent when dnsDefaultToken and dnsForwarder are both off. */
export interface VmDnsSettings {
    /** Client agents get the DNS token as acl.tokens.default (ACLs on). */
    readonly defaultToken: boolean;
    readonly forwarder: DnsForwarder;
}

export const DNS_FORWARDERS = ["none", "systemd-resolved"] as const;
export type DnsForwarder = (typeof DNS_FORWARDERS)[number];

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
    /** Snapshot backups; absent when snapshotInterval is empty (the default). */
    readonly snapshot?: SnapshotSettings;
    /** DNS token and forwarder on the clients; absent when both are off (the default). */
    readonly dns?: VmDnsSettings;
    /** Client hosts register the consul-client service (clientSelfRegister), as the DaemonSet does. */
    readonly clientSelfRegister: boolean;
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
        readonly ca: CaSettings;
    };
    readonly gossipKeyKeeper: string;
    readonly telemetry: { readonly enabled: boolean; readonly retention: string };
    /** Set for the kubernetes and hybrid topologies. */
    readonly kubernetes?: KubernetesSettings;
    /** Set for the vm and hybrid topologies. */
    readonly vm?: VmSettings;
    /** Apps that get their own ACL token (appTokens, vm only), sorted; absent when none. */
    readonly appTokens?: readonly string[];
    /** WAN federation (vm only); absent when this datacenter stands alone. */
    readonly federation?: FederationSettings;
    /** What the operator should know that is not a problem (a preview without the SSH key, say). */
    readonly notes: readonly string[];
}

/**
 * A primary issues federation material for the secondaries it lists; a secondary takes it from the
 * primary's stack (a StackReference name).
 */
export type FederationSettings =
    | { readonly role: "primary"; readonly secondaries: readonly string[] }
    | { readonly role: "secondary"; readonly primaryStack: string };

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

/**
 * Which CA signs and which CAs are trusted. Outside a rotation one CA does both. A rotation goes
 * through two phases, each one pulumi up: `trust` (both CAs trusted, the previous one still signs),
 * `reissue` (both trusted, the new one signs); removing `previous` then drops the old CA.
 */
export interface CaSettings {
    readonly keeper: string;
    readonly previous?: { readonly keeper: string; readonly phase: "trust" | "reissue" };
}
