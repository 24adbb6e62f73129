// Names that several components must agree on: Kubernetes object names, DNS forms and file
// paths. Kept pure so the PKI (which needs the DNS names for its SANs) and the workloads match.

import { Settings } from "../config";

export const SERVER_NAME = "consul-server";
export const CLIENT_NAME = "consul-client";
export const UI_SERVICE_NAME = "consul-ui";
/** The Job that makes MinQuorum and Raft's voters follow the server count (kubernetes topology). */
export const SERVER_COUNT_JOB_NAME = "consul-server-count";
export const CLUSTER_DOMAIN = "cluster.local";
/** ConfigMap holding the cluster CA certificate (public) for agents, Jobs and applications. */
export const CA_CONFIGMAP_NAME = "consul-ca";

/** The name every Consul server certificate must carry under verify_server_hostname. */
export function serverTlsName(settings: Pick<Settings, "datacenter" | "domain">): string {
    return `server.${settings.datacenter}.${settings.domain}`;
}

/**
 * The name on the client agents' HTTPS certificate (issued by our CA). Apps verify the node-local
 * agent against it (CONSUL_TLS_SERVER_NAME); it can never pass for server.<dc>.<domain>.
 */
export function clientTlsName(settings: Pick<Settings, "datacenter" | "domain">): string {
    return `client.${settings.datacenter}.${settings.domain}`;
}

/** Every DNS form a peer or client uses for an in-cluster server (as the Helm chart's SANs). */
export function kubernetesServerDnsNames(namespace: string): string[] {
    const names: string[] = [];
    for (const service of [SERVER_NAME, UI_SERVICE_NAME]) {
        for (const suffix of ["", `.${namespace}`, `.${namespace}.svc`, `.${namespace}.svc.${CLUSTER_DOMAIN}`]) {
            names.push(`${service}${suffix}`, `*.${service}${suffix}`);
        }
    }
    return names;
}

/** Stable per-pod DNS name of server `ordinal` behind the headless service. */
export function kubernetesServerPodDnsName(namespace: string, ordinal: number): string {
    return `${SERVER_NAME}-${ordinal}.${SERVER_NAME}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}
