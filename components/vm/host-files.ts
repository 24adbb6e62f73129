// Pure: every file one host gets (agent config, secrets, TLS material, unit, CLI profile), with
// owner and mode, from plain settings and resolved material.

import {
    AgentFederation,
    agentSecretConfig,
    AgentRole,
    AgentSettings,
    clientAgentConfig,
    clientSelfService,
    gossipConfig,
    httpsUrl,
    renderJson,
    serverAgentConfig,
    splitStartupOnly,
} from "../agent";
import { Host, Settings } from "../config";
import { hostCliEnvironment, renderProfile } from "./cli-environment";
import { NodeFile } from "./bundle";
import { PATHS } from "./paths";
import { ownerId } from "./plan";
import { consulUnit, renderUnit } from "./systemd";

/** The address peers dial for a host (IPv6 without brackets, as retry_join takes it). */
function dialAddress(host: Host): string {
    return host.address;
}

/** Lowest port the agent listens on (decides CAP_NET_BIND_SERVICE). */
export function lowestListenPort(settings: Pick<Settings, "ports">, role: AgentRole): number {
    const p = settings.ports;
    const ports = [p.https, p.http, p.grpcTls, p.dns, p.serfLan];
    if (role === "server") ports.push(p.serverRpc, p.serfWan);
    return Math.min(...ports.filter((port) => port > 0));
}

/** The security material a host's files are made from (resolved values; secrets included). */
export interface NodeMaterial {
    readonly caCertPem: string;
    readonly gossipKey: string;
    /** Servers. */
    readonly serverCertPem?: string;
    readonly serverKeyPem?: string;
    readonly cliCertPem?: string;
    readonly cliKeyPem?: string;
    /** With ACLs. */
    readonly managementToken?: string;
    readonly agentToken?: string;
    /** dnsDefaultToken: clients' default token; the servers' file for the DNS ACL step. */
    readonly dnsToken?: string;
    /**
     * A federation secondary: the primary's datacenter and WAN addresses, and the replication token
     * its servers replicate ACLs with (it is also their admin token file's, as managementToken).
     */
    readonly federation?: AgentFederation & { readonly replicationToken: string };
    /**
     * A federation secondary's clients: the HTTPS listener's certificate (our CA's, chain included)
     * and key, since Consul 1.16's Connect CA in a secondary issues auto_encrypt certificates with
     * an empty issuer (hashicorp/consul#16202), which OpenSSL clients (curl, Node) refuse.
     */
    readonly clientHttpsCertPem?: string;
    readonly clientHttpsKeyPem?: string;
}

/** What a host's files depend on beyond its settings and material. */
export interface NodeFileOptions {
    /** Clients: register the consul-client service (clientSelfRegister), which Prometheus discovers. */
    readonly selfRegister?: boolean;
    /** A federation secondary's agents (NodeMaterial.federation). */
    readonly federation?: AgentFederation;
    /** Clients: serve HTTPS with PATHS.clientHttpsCert (NodeMaterial.clientHttpsCertPem). */
    readonly clientHttps?: boolean;
}

/** The main (non-secret) agent config of one VM host. */
export function vmAgentConfig(
    settings: AgentSettings,
    role: AgentRole,
    host: Host,
    servers: readonly Host[],
    options: NodeFileOptions = {},
): Record<string, unknown> {
    const common = {
        dataDir: PATHS.dataDir,
        nodeName: host.name,
        bindAddr: host.addressIsIp ? host.address : undefined,
        advertiseAddr: host.addressIsIp ? host.address : undefined,
        federation: options.federation,
    };
    if (role === "server") {
        const others = servers.filter((s) => s.name !== host.name).map(dialAddress);
        return serverAgentConfig(settings, {
            ...common,
            tls: { caFile: PATHS.caFile, certFile: PATHS.serverCert, keyFile: PATHS.serverKey },
            // A lone server lists itself: bootstrap_expect needs a retry_join, joining itself is harmless.
            retryJoin: others.length > 0 ? others : [dialAddress(host)],
        });
    }
    const https = options.clientHttps
        ? { httpsCertFile: PATHS.clientHttpsCert, httpsKeyFile: PATHS.clientHttpsKey }
        : {};
    const config = clientAgentConfig(settings, {
        ...common,
        tls: { caFile: PATHS.caFile, ...https },
        retryJoin: servers.map(dialAddress),
        autoEncryptIpSans: host.addressIsIp ? [host.address] : undefined,
    });
    if (options.selfRegister) config.services = [clientSelfService(settings)];
    return config;
}

/** Every file one host gets, with owner and mode. Pure: same inputs, same files. */
export function nodeFiles(
    settings: AgentSettings,
    role: AgentRole,
    host: Host,
    servers: readonly Host[],
    material: NodeMaterial,
    options: NodeFileOptions = {},
): NodeFile[] {
    const configFiles = [PATHS.mainConfig, PATHS.joinConfig, PATHS.secretConfig, PATHS.gossipConfig];
    const federation = material.federation;
    const clientHttps = role === "client" && material.clientHttpsCertPem !== undefined;
    const { main, startupOnly } = splitStartupOnly(
        vmAgentConfig(settings, role, host, servers, {
            ...options,
            ...(clientHttps ? { clientHttps } : {}),
            ...(federation
                ? {
                      federation: {
                          primaryDatacenter: federation.primaryDatacenter,
                          retryJoinWan: federation.retryJoinWan,
                      },
                  }
                : {}),
        }),
    );
    const unit = consulUnit({
        role,
        nodeName: host.name,
        binary: PATHS.binary,
        configFiles,
        dataDir: PATHS.dataDir,
        hasPeerToJoin: role === "client" || servers.length > 1,
        lowestPort: lowestListenPort(settings, role),
    });
    // The management token is no agent's business: the apply script bootstraps the ACL system with
    // it from the root-only token file, so the consul user never reads it.
    const agentToken = settings.acl.enabled ? material.agentToken : undefined;
    // The self-registration service in the config file is registered with the agent token.
    const registrationToken = role === "client" && options.selfRegister ? agentToken : undefined;
    const secrets = agentSecretConfig(role, {
        agentToken,
        configFileRegistrationToken: registrationToken,
        defaultToken: role === "client" ? material.dnsToken : undefined,
        replicationToken: settings.acl.enabled ? federation?.replicationToken : undefined,
    });
    const files: NodeFile[] = [
        {
            path: PATHS.mainConfig,
            mode: "0640",
            owner: "root",
            group: "consul",
            content: renderJson(main),
        },
        { path: PATHS.joinConfig, mode: "0640", owner: "root", group: "consul", content: renderJson(startupOnly) },
        { path: PATHS.secretConfig, mode: "0640", owner: "root", group: "consul", content: renderJson(secrets) },
        {
            path: PATHS.gossipConfig,
            mode: "0640",
            owner: "root",
            group: "consul",
            content: renderJson(gossipConfig(material.gossipKey)),
        },
        { path: PATHS.caFile, mode: "0644", owner: "root", group: "consul", content: material.caCertPem },
        {
            path: PATHS.profile,
            mode: "0644",
            owner: "root",
            group: "root",
            content: renderProfile(hostCliEnvironment(settings, role)),
        },
        { path: PATHS.unit, mode: "0644", owner: "root", group: "root", content: renderUnit(unit) },
        { path: PATHS.owner, mode: "0644", owner: "root", group: "root", content: ownerId(role, host) + "\n" },
    ];
    if (clientHttps) {
        files.push(
            {
                path: PATHS.clientHttpsCert,
                mode: "0644",
                owner: "root",
                group: "consul",
                content: material.clientHttpsCertPem ?? "",
            },
            {
                path: PATHS.clientHttpsKey,
                mode: "0640",
                owner: "root",
                group: "consul",
                content: material.clientHttpsKeyPem ?? "",
            },
        );
    }
    if (role === "server") {
        const need = (value: string | undefined, what: string): string => {
            if (!value) throw new Error(`server ${host.name} needs its ${what}`);
            return value;
        };
        files.push(
            {
                path: PATHS.serverCert,
                mode: "0644",
                owner: "root",
                group: "consul",
                content: need(material.serverCertPem, "certificate"),
            },
            {
                path: PATHS.serverKey,
                mode: "0640",
                owner: "root",
                group: "consul",
                content: need(material.serverKeyPem, "private key"),
            },
            {
                path: PATHS.cliCert,
                mode: "0600",
                owner: "root",
                group: "root",
                content: need(material.cliCertPem, "CLI certificate"),
            },
            {
                path: PATHS.cliKey,
                mode: "0600",
                owner: "root",
                group: "root",
                content: need(material.cliKeyPem, "CLI key"),
            },
        );
        if (settings.acl.enabled) {
            files.push(
                {
                    path: PATHS.managementTokenFile,
                    mode: "0600",
                    owner: "root",
                    group: "root",
                    content: need(material.managementToken, "management token") + "\n",
                },
                {
                    path: PATHS.agentTokenFile,
                    mode: "0600",
                    owner: "root",
                    group: "root",
                    content: need(material.agentToken, "agent token") + "\n",
                },
            );
        }
        if (material.dnsToken) {
            files.push({
                path: PATHS.dnsTokenFile,
                mode: "0600",
                owner: "root",
                group: "root",
                content: material.dnsToken + "\n",
            });
        }
    }
    return files;
}

/** Servers' HTTPS base URLs (clients fetch the Connect CA roots from them). */
export function serverApiUrls(settings: Pick<Settings, "ports">, servers: readonly Host[]): string[] {
    return servers.map((s) => httpsUrl(s.address, settings.ports.https));
}
