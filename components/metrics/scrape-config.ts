// The Prometheus scrape config that collects every agent's metrics, as a typed object rendered to
// YAML. Prometheus runs on a client host: its Consul discovery asks the local agent (HTTPS, our CA
// and the Connect CA roots the agents' certificates chain to), then scrapes each agent's
// /v1/agent/metrics over HTTPS, verifying its certificate, with the metrics token from a file
// (never inline: the rendered config is not a secret).

import type { Settings } from "../config";
import { CLIENT_SELF_SERVICE, hostPort, serverTlsName } from "../agent";
import { SERVER_SERVICE } from "../security";
import { renderYaml } from "./yaml";

/** Where the operator puts the metrics token on the Prometheus host (readable by prometheus only). */
export const PROMETHEUS_TOKEN_FILE = "/etc/prometheus/consul-metrics.token";

export interface TlsConfig {
    readonly ca_file: string;
    /** The name the certificate must carry; absent, the target's address (an IP SAN) is verified. */
    readonly server_name?: string;
}

export interface Authorization {
    readonly type: "Bearer";
    readonly credentials_file: string;
}

export interface ConsulSdConfig {
    readonly server: string;
    readonly scheme: "https";
    readonly datacenter: string;
    readonly services: readonly string[];
    readonly authorization?: Authorization;
    readonly tls_config: TlsConfig;
}

export interface RelabelConfig {
    readonly source_labels: readonly string[];
    readonly regex: string;
    readonly target_label: string;
    readonly replacement: string;
}

export interface ScrapeConfig {
    readonly job_name: string;
    readonly scheme: "https";
    readonly metrics_path: string;
    readonly params: { readonly format: readonly string[] };
    readonly authorization?: Authorization;
    readonly tls_config: TlsConfig;
    readonly consul_sd_configs: readonly ConsulSdConfig[];
    readonly relabel_configs: readonly RelabelConfig[];
}

export interface PrometheusScrapeConfig {
    readonly scrape_configs: readonly ScrapeConfig[];
}

export interface ScrapeConfigArgs {
    readonly settings: Pick<Settings, "datacenter" | "domain"> & {
        readonly ports: Pick<Settings["ports"], "https">;
        readonly aclEnabled: boolean;
    };
    /** The CA bundle the agents' HTTPS certificates verify against, on the Prometheus host. */
    readonly caFile: string;
    readonly tokenFile?: string;
}

/** The two jobs: servers (the `consul` service), clients (the `consul-client` self-registration). */
export const SCRAPE_JOBS = { server: "consul-servers", client: "consul-clients" } as const;

/** The scrape config; with ACLs off there is no token to send. */
export function prometheusScrapeConfig(args: ScrapeConfigArgs): PrometheusScrapeConfig {
    const { settings } = args;
    const https = settings.ports.https;
    const authorization: Authorization | undefined = settings.aclEnabled
        ? { type: "Bearer", credentials_file: args.tokenFile ?? PROMETHEUS_TOKEN_FILE }
        : undefined;
    const job = (name: string, service: string, serverName?: string): ScrapeConfig => ({
        job_name: name,
        scheme: "https",
        metrics_path: "/v1/agent/metrics",
        params: { format: ["prometheus"] },
        authorization,
        tls_config: { ca_file: args.caFile, server_name: serverName },
        consul_sd_configs: [
            {
                server: hostPort("127.0.0.1", https),
                scheme: "https",
                datacenter: settings.datacenter,
                services: [service],
                authorization,
                tls_config: { ca_file: args.caFile },
            },
        ],
        relabel_configs: [
            // Every agent's HTTPS API, whatever port its service names (the servers' is RPC).
            {
                source_labels: ["__meta_consul_address"],
                regex: "([^:]+)",
                target_label: "__address__",
                replacement: `$1:${https}`,
            },
            {
                source_labels: ["__meta_consul_address"],
                regex: "(.+:.+)",
                target_label: "__address__",
                replacement: `[$1]:${https}`,
            },
            { source_labels: ["__meta_consul_node"], regex: "(.+)", target_label: "instance", replacement: "$1" },
            { source_labels: ["__meta_consul_node"], regex: "(.+)", target_label: "node", replacement: "$1" },
        ],
    });
    return {
        scrape_configs: [
            // Every server's certificate carries server.<dc>.<domain>: a target that is not one of
            // this datacenter's servers fails the scrape.
            job(SCRAPE_JOBS.server, SERVER_SERVICE, serverTlsName(settings)),
            // Clients' HTTPS certificates (auto_encrypt's; a secondary's, ours) carry the host's address.
            job(SCRAPE_JOBS.client, CLIENT_SELF_SERVICE),
        ],
    };
}

/** The scrape config as Prometheus reads it (the `scrape_configs` section of prometheus.yml). */
export function renderScrapeConfig(config: PrometheusScrapeConfig): string {
    return renderYaml(config);
}
