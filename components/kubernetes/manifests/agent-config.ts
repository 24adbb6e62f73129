// The agents' config files as the pods mount them, and where in-cluster agents find the servers.

import {
    AgentConfig,
    clientAgentConfig,
    clientSelfService,
    clientTlsName,
    hostPort,
    httpsUrl,
    renderJson,
    SERVER_NAME,
    serverAgentConfig,
} from "../../agent";
import { AGENT_POLICY_NAME } from "../../security";
import { FILES, MOUNTS, WorkloadSettings } from "./common";

/** The one retry_join entry in-cluster agents use: the headless service, resolving to every server pod. */
export function serverServiceHost(namespace: string): string {
    return `${SERVER_NAME}.${namespace}.svc`;
}

/** retry_join for client agents: the in-cluster servers, or the VM servers in the hybrid topology. */
export function clientRetryJoin(settings: WorkloadSettings): string[] {
    if (settings.topology === "hybrid") {
        const servers = settings.vm?.servers ?? [];
        if (servers.length === 0) throw new Error("the hybrid topology needs the VM server addresses (serverHosts)");
        return servers.map((h) => hostPort(h.address, settings.ports.serfLan));
    }
    return [hostPort(serverServiceHost(settings.kubernetes.namespace), settings.ports.serfLan)];
}

/** HTTPS base URLs of the servers, for the ACL Job. */
export function serverHttpsUrls(settings: WorkloadSettings): string[] {
    if (settings.topology === "hybrid") {
        return (settings.vm?.servers ?? []).map((h) => httpsUrl(h.address, settings.ports.https));
    }
    return [httpsUrl(serverServiceHost(settings.kubernetes.namespace), settings.ports.https)];
}

/** The servers' main config (ConfigMap): data on the PVC, TLS from the mounted Secret. */
export function kubernetesServerConfig(settings: WorkloadSettings): AgentConfig {
    const namespace = settings.kubernetes.namespace;
    // Servers never leave on terminate (see agent/config.ts): a rescheduled pod keeps its PVC, its
    // node ID and its Raft seat; autopilot's min_quorum keeps a crash loop from shrinking the quorum.
    return serverAgentConfig(settings, {
        dataDir: MOUNTS.data,
        tls: {
            caFile: `${MOUNTS.tls}/${FILES.caCert}`,
            certFile: `${MOUNTS.tls}/${FILES.tlsCert}`,
            keyFile: `${MOUNTS.tls}/${FILES.tlsKey}`,
        },
        retryJoin: [hostPort(serverServiceHost(namespace), settings.ports.serfLan)],
    });
}

/** The client agents' main config (ConfigMap). Node name and addresses come from the start script. */
export function kubernetesClientConfig(settings: WorkloadSettings): AgentConfig {
    const config = clientAgentConfig(settings, {
        dataDir: MOUNTS.data,
        tls: {
            caFile: `${MOUNTS.ca}/${FILES.caCert}`,
            httpsCertFile: `${MOUNTS.tls}/${FILES.tlsCert}`,
            httpsKeyFile: `${MOUNTS.tls}/${FILES.tlsKey}`,
        },
        retryJoin: clientRetryJoin(settings),
    });
    if (settings.kubernetes.clientSelfRegister) config.services = [clientSelfService(settings)];
    return config;
}

/** SANs of the client agents' HTTPS certificate: the name apps verify, and loopback for probes. */
export function clientHttpsNames(settings: Pick<WorkloadSettings, "datacenter" | "domain">): {
    dnsNames: string[];
    ipAddresses: string[];
} {
    return { dnsNames: [clientTlsName(settings), "localhost"], ipAddresses: ["127.0.0.1", "::1"] };
}

/** PUT /v1/acl/token body with the fixed SecretID the agents were configured with. A secret. */
export function agentTokenBody(agentToken: string): string {
    return renderJson({
        SecretID: agentToken,
        Description: "Consul agent token (created by Pulumi)",
        Policies: [{ Name: AGENT_POLICY_NAME }],
        Local: false,
    });
}

/** A curl header file line. A secret. */
export function tokenHeader(token: string): string {
    if (!/^[0-9a-fA-F-]+$/.test(token)) throw new Error("an ACL token must be a UUID");
    return `X-Consul-Token: ${token}\n`;
}
