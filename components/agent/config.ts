// Pure functions: settings in, Consul agent config objects out, shared by both topologies.
// The main config holds nothing secret so it can live in a ConfigMap, be shown in a diff and be
// logged; the gossip key and ACL tokens go in a separate fragment that is handled as a secret.

import { Settings } from "../config";

export type AgentRole = "server" | "client";

/** Where the agent finds its TLS files. Clients use auto_encrypt and need only the CA. */
export interface AgentTlsFiles {
    readonly caFile: string;
    readonly certFile?: string;
    readonly keyFile?: string;
    /**
     * Clients: a certificate for the HTTPS listener only. It takes precedence over the
     * auto_encrypt certificate on HTTPS; internal RPC and gRPC keep using auto_encrypt.
     */
    readonly httpsCertFile?: string;
    readonly httpsKeyFile?: string;
}

export interface AgentOptions {
    readonly dataDir: string;
    readonly tls: AgentTlsFiles;
    /** Addresses or DNS names (or go-discover strings) to join; servers need at least one. */
    readonly retryJoin: readonly string[];
    /** Omitted when the node name comes from the command line (e.g. `-node=$(NODE_NAME)`). */
    readonly nodeName?: string;
    readonly bindAddr?: string;
    readonly advertiseAddr?: string;
    /** Where the HTTP(S)/DNS/gRPC listeners bind; default all interfaces. */
    readonly clientAddr?: string;
    /** Clients: extra IP SANs for the auto_encrypt certificate (the address apps dial). */
    readonly autoEncryptIpSans?: readonly string[];
    /** A federation secondary's agents: the primary datacenter and (servers) its WAN addresses. */
    readonly federation?: AgentFederation;
}

/** What a secondary datacenter's agents know of the primary. */
export interface AgentFederation {
    readonly primaryDatacenter: string;
    /** The primary's servers as retry_join_wan takes them (`<address>:<serf WAN port>`). */
    readonly retryJoinWan: readonly string[];
}

export type AgentConfig = Record<string, unknown>;

export interface AgentSecrets {
    /** Absent where the key has a file of its own (VM hosts: `gossipConfig`). */
    readonly gossipKey?: string;
    /** Servers only: bootstraps the ACL system with a token we already know. */
    readonly managementToken?: string;
    readonly agentToken?: string;
    /** Clients: registers the services defined in config files (acl.tokens.config_file_service_registration). */
    readonly configFileRegistrationToken?: string;
    /** Clients with dnsDefaultToken: DNS, and HTTP requests without a token, use it (acl.tokens.default). */
    readonly defaultToken?: string;
    /** A federation secondary's servers: replicates ACLs from the primary (acl.tokens.replication). */
    readonly replicationToken?: string;
}

/** The slice of Settings an agent's config is made from. */
export type AgentSettings = Pick<
    Settings,
    "datacenter" | "domain" | "logLevel" | "ports" | "acl" | "telemetry" | "raftMultiplier" | "serverCount"
>;

function commonConfig(settings: AgentSettings, options: AgentOptions): AgentConfig {
    const config: AgentConfig = {
        datacenter: settings.datacenter,
        primary_datacenter: options.federation?.primaryDatacenter ?? settings.datacenter,
        domain: settings.domain,
        data_dir: options.dataDir,
        log_level: settings.logLevel.toUpperCase(),
        client_addr: options.clientAddr ?? "0.0.0.0",
        retry_join: [...options.retryJoin],
        retry_interval: "5s",
        disable_update_check: true,
        disable_remote_exec: true,
        enable_script_checks: false,
        enable_local_script_checks: false,
        encrypt_verify_incoming: true,
        encrypt_verify_outgoing: true,
        performance: { raft_multiplier: settings.raftMultiplier },
        ports: {
            http: settings.ports.http,
            https: settings.ports.https,
            grpc: -1,
            grpc_tls: settings.ports.grpcTls,
            dns: settings.ports.dns,
            server: settings.ports.serverRpc,
            serf_lan: settings.ports.serfLan,
            serf_wan: settings.ports.serfWan,
        },
        acl: {
            enabled: settings.acl.enabled,
            default_policy: settings.acl.defaultPolicy,
            down_policy: settings.acl.downPolicy,
            enable_token_persistence: true,
        },
    };
    if (options.nodeName !== undefined) config.node_name = options.nodeName;
    if (options.bindAddr !== undefined) config.bind_addr = options.bindAddr;
    if (options.advertiseAddr !== undefined) config.advertise_addr = options.advertiseAddr;
    if (settings.telemetry.enabled) {
        config.telemetry = {
            prometheus_retention_time: settings.telemetry.retention,
            disable_hostname: true,
        };
    }
    return config;
}

/** No SSL, TLS 1.0 or 1.1 on any listener (Consul's default too, stated so no upgrade changes it). */
export const TLS_MIN_VERSION = "TLSv1_2";

/**
 * TLS 1.2 suites: ECDHE with AEAD only, no CBC (testssl.sh calls those obsoleted). TLS 1.3 suites
 * are Go's, all AEAD, and not configurable.
 */
export const TLS_CIPHER_SUITES = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
].join(",");

/** The main (non-secret) config of a Consul server. */
export function serverAgentConfig(settings: AgentSettings, options: AgentOptions): AgentConfig {
    if (!options.tls.certFile || !options.tls.keyFile) {
        throw new Error("a server needs its own certificate and key (tls.certFile, tls.keyFile)");
    }
    if (options.retryJoin.length === 0) {
        throw new Error("bootstrap_expect needs retry_join: give the server addresses to join");
    }
    const common = commonConfig(settings, options);
    const federation = options.federation;
    return {
        ...common,
        ...(federation
            ? {
                  // Only servers take part in WAN gossip; one reachable primary server is enough.
                  retry_join_wan: [...federation.retryJoinWan],
                  acl: { ...(common.acl as AgentConfig), enable_token_replication: true },
              }
            : {}),
        server: true,
        bootstrap_expect: settings.serverCount,
        // A restarted or rescheduled server keeps its node ID (persistent data dir) and rejoins as
        // the same Raft peer. Leaving would shrink the peer set, so a second failure during a
        // rolling restart could lose quorum; the upgrade docs dropped `leave` for that reason.
        leave_on_terminate: false,
        skip_leave_on_interrupt: true,
        // Autopilot prunes a failed server only while at least min_quorum servers remain. At the
        // configured count it therefore never prunes one that is merely down (a reboot): only the
        // one a replacement outnumbers. A server removed for good is pruned by the VM topology's
        // prune step (deadHosts) or by leaving. Consul reads this block when the cluster first
        // bootstraps; later changes need `consul operator autopilot set-config`.
        autopilot: {
            cleanup_dead_servers: true,
            min_quorum: settings.serverCount,
            last_contact_threshold: "200ms",
            server_stabilization_time: "10s",
        },
        ui_config: { enabled: true },
        connect: { enabled: true },
        auto_encrypt: { allow_tls: true },
        tls: {
            defaults: {
                ca_file: options.tls.caFile,
                cert_file: options.tls.certFile,
                key_file: options.tls.keyFile,
                verify_outgoing: true,
                tls_min_version: TLS_MIN_VERSION,
                tls_cipher_suites: TLS_CIPHER_SUITES,
            },
            internal_rpc: { verify_incoming: true, verify_server_hostname: true },
            // The API is guarded by ACLs; requiring client certificates there would lock out
            // probes and apps that only have the CA.
            https: { verify_incoming: false },
            grpc: { verify_incoming: false },
        },
    };
}

/** The main (non-secret) config of a Consul client agent. */
export function clientAgentConfig(settings: AgentSettings, options: AgentOptions): AgentConfig {
    if (options.retryJoin.length === 0) {
        throw new Error("a client needs server addresses to join (retry_join)");
    }
    const autoEncrypt: Record<string, unknown> = { tls: true };
    if (options.autoEncryptIpSans && options.autoEncryptIpSans.length > 0) {
        autoEncrypt.ip_san = [...options.autoEncryptIpSans];
    }
    return {
        ...commonConfig(settings, options),
        server: false,
        // A client that goes away for good shows as "left", not "failed", and stops being
        // health-checked by the servers.
        leave_on_terminate: true,
        auto_encrypt: autoEncrypt,
        tls: {
            defaults: {
                ca_file: options.tls.caFile,
                verify_outgoing: true,
                tls_min_version: TLS_MIN_VERSION,
                tls_cipher_suites: TLS_CIPHER_SUITES,
            },
            internal_rpc: { verify_server_hostname: true },
            https: {
                verify_incoming: false,
                ...(options.tls.httpsCertFile && options.tls.httpsKeyFile
                    ? { cert_file: options.tls.httpsCertFile, key_file: options.tls.httpsKeyFile }
                    : {}),
            },
            grpc: { verify_incoming: false },
        },
    };
}

/**
 * Keys Consul reads only when an agent starts (retry_join, retry_join_wan) or a cluster first bootstraps
 * (bootstrap_expect, autopilot): a running agent is unaffected by a change to them, so they can
 * change without a restart, as when servers are added or removed.
 */
export const STARTUP_ONLY_KEYS = [
    "autopilot",
    "bootstrap_expect",
    "retry_interval",
    "retry_join",
    "retry_join_wan",
] as const;

/** Splits a config into its startup-only keys and the rest. */
export function splitStartupOnly(config: AgentConfig): { main: AgentConfig; startupOnly: AgentConfig } {
    const main: AgentConfig = {};
    const startupOnly: AgentConfig = {};
    for (const [key, value] of Object.entries(config)) {
        if ((STARTUP_ONLY_KEYS as readonly string[]).includes(key)) startupOnly[key] = value;
        else main[key] = value;
    }
    return { main, startupOnly };
}

/** The secret fragment: gossip key and ACL tokens. Handle its rendering as a Pulumi secret. */
export function agentSecretConfig(role: AgentRole, secrets: AgentSecrets): AgentConfig {
    const config: AgentConfig = secrets.gossipKey !== undefined ? gossipConfig(secrets.gossipKey) : {};
    const tokens: Record<string, string> = {};
    if (role === "server" && secrets.managementToken) tokens.initial_management = secrets.managementToken;
    if (secrets.agentToken) tokens.agent = secrets.agentToken;
    if (secrets.configFileRegistrationToken) {
        tokens.config_file_service_registration = secrets.configFileRegistrationToken;
    }
    if (secrets.defaultToken) tokens.default = secrets.defaultToken;
    if (role === "server" && secrets.replicationToken) tokens.replication = secrets.replicationToken;
    if (Object.keys(tokens).length > 0) config.acl = { tokens };
    return config;
}

/**
 * The gossip key alone. Consul reads `encrypt` only for an agent whose data dir has no keyring yet
 * (`serf/*.keyring` wins after the first start), so a file of its own lets a host tell a new key,
 * which the keyring protocol rolls out, from changes that need a restart.
 */
export function gossipConfig(gossipKey: string): AgentConfig {
    return { encrypt: gossipKey };
}

/** Deterministic JSON: keys sorted at every level, two-space indent, trailing newline. */
export function renderJson(value: unknown): string {
    return JSON.stringify(sortKeys(value), null, 2) + "\n";
}

function sortKeys(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(sortKeys);
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(
            Object.keys(value as Record<string, unknown>)
                .sort()
                .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
        );
    }
    return value;
}
