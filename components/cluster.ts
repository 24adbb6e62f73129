import * as pulumi from "@pulumi/pulumi";
import { AclTokens, ConsulPki, ConsulPkiArgs, GossipKey, GossipKeySource, HostIdentity } from "./security";
import { FederationPrimary, PrimaryMaterial, primaryMaterial } from "./federation";
import {
    AgentRole,
    agentSecretConfig,
    httpsUrl,
    kubernetesServerDnsNames,
    kubernetesServerPodDnsName,
    renderJson,
    serverTlsName,
} from "./agent";
import { Host, Settings } from "./config";
import {
    clientHttpsNames,
    ConsulAclAgentToken,
    ConsulClients,
    ConsulServerCount,
    ConsulServers,
    KubernetesBase,
} from "./kubernetes";
import { PATHS, VmCluster } from "./vm";
import { prometheusScrapeConfig, renderScrapeConfig } from "./metrics";

/** What a VM server's certificate must be valid for: its node name and the address peers dial. */
export function vmHostIdentity(host: Host): HostIdentity {
    return {
        name: host.name,
        dnsNames: host.addressIsIp ? [host.name] : [host.name, host.address],
        ipAddresses: host.addressIsIp ? [host.address] : [],
    };
}

/** The server certificates this topology needs: one shared on Kubernetes, one per host on VMs. */
export function serverIdentities(settings: Settings): HostIdentity[] {
    if (settings.vm) return settings.vm.servers.map(vmHostIdentity);
    const namespace = (settings.kubernetes as NonNullable<Settings["kubernetes"]>).namespace;
    // `*.server.<dc>.<domain>`: the per-node server name Consul uses as SNI (ServerSNI).
    const dnsNames = [...kubernetesServerDnsNames(namespace), `*.${serverTlsName(settings)}`];
    return [{ name: "server", dnsNames, ipAddresses: [] }];
}

/**
 * Whose HTTPS listener our CA certifies: Kubernetes clients share one certificate; the VM clients
 * of a federation secondary get one each (see NodeMaterial.clientHttpsCertPem); others use
 * auto_encrypt's.
 */
function clientHttpsIdentities(settings: Settings, secondary: boolean): ConsulPkiArgs["clientHttps"] {
    if (settings.kubernetes?.clientsEnabled) return clientHttpsNames(settings);
    if (settings.topology !== "vm" || !secondary || !settings.vm) return undefined;
    return { ...clientHttpsNames(settings), hosts: settings.vm.clients.map(vmHostIdentity) };
}

/** Where the servers' HTTPS API is, as operators and the hybrid clients reach it. */
export function serverAddresses(settings: Settings): string[] {
    const port = settings.ports.https;
    if (settings.vm) {
        return settings.vm.servers.map((h) => httpsUrl(h.address, port));
    }
    const namespace = (settings.kubernetes as NonNullable<Settings["kubernetes"]>).namespace;
    return Array.from({ length: settings.serverCount }, (_, i) =>
        httpsUrl(kubernetesServerPodDnsName(namespace, i), port),
    );
}

/**
 * What an application puts in CONSUL_HTTP_ADDR: always its node-local agent (seed 003). In
 * Kubernetes the node's address comes from a HOST_IP downward-API variable declared before it.
 */
export function consulHttpAddr(settings: Settings): string {
    const port = settings.ports.https;
    return settings.topology === "vm" ? `https://127.0.0.1:${port}` : `https://$(HOST_IP):${port}`;
}

/**
 * vm topology with telemetry on: the scrape_configs of a Prometheus on a client host (YAML; the
 * token is read from a file, so this is no secret). Empty otherwise.
 */
export function prometheusScrapeConfigYaml(settings: Settings): string {
    if (settings.topology !== "vm" || !settings.telemetry.enabled) return "";
    const scrape = prometheusScrapeConfig({
        settings: { ...settings, aclEnabled: settings.acl.enabled },
        caFile: PATHS.agentCaBundle,
    });
    return renderScrapeConfig(scrape);
}

/** A secondary's signer: the intermediate CA the primary issued for it, under the primary's root. */
function intermediateSigner(primary: pulumi.Output<PrimaryMaterial>) {
    return {
        // Certificates are no secret; only the key is.
        certPem: pulumi.unsecret(primary.apply((m) => m.intermediate.certPem)),
        privateKeyPem: pulumi.secret(primary.apply((m) => m.intermediate.keyPem)),
        rootCertPem: pulumi.unsecret(primary.apply((m) => m.caCertPem)),
    };
}

/** The whole deployment: shared security material, then the workloads of the chosen topology. */
export class ConsulCluster extends pulumi.ComponentResource {
    public readonly pki: ConsulPki;
    /** Its own, or (a federation secondary) the primary's. */
    public readonly gossipKey: GossipKeySource;
    public readonly aclTokens?: AclTokens;
    /** Kubernetes topologies: provider, namespace, CA ConfigMaps. */
    public readonly kubernetes?: KubernetesBase;
    public readonly servers?: ConsulServers;
    public readonly clients?: ConsulClients;
    /** vm and hybrid topologies: the hosts reached over SSH (hybrid: servers only). */
    public readonly vm?: VmCluster;
    /** A federation primary: the replication token and the secondaries' `federation` output. */
    public readonly federation?: FederationPrimary;

    constructor(name: string, settings: Settings, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:ConsulCluster", name, {}, opts);
        const parent = { parent: this };
        const federation = settings.federation;
        const primary =
            federation?.role === "secondary"
                ? primaryMaterial(
                      `${name}-primary`,
                      { ...settings, aclEnabled: settings.acl.enabled, primaryStack: federation.primaryStack },
                      parent,
                  )
                : undefined;
        this.pki = new ConsulPki(
            `${name}-pki`,
            {
                datacenter: settings.datacenter,
                domain: settings.domain,
                caValidityHours: settings.tls.caValidityHours,
                certValidityHours: settings.tls.certValidityHours,
                earlyRenewalHours: settings.tls.earlyRenewalHours,
                ca: settings.tls.ca,
                servers: serverIdentities(settings),
                clientHttps: clientHttpsIdentities(settings, primary !== undefined),
                intermediates: federation?.role === "primary" ? federation.secondaries : undefined,
                signer: primary && intermediateSigner(primary),
            },
            parent,
        );
        this.gossipKey = primary
            ? { key: pulumi.secret(primary.apply((m) => m.gossipKey)) }
            : new GossipKey(`${name}-gossip`, { keeper: settings.gossipKeyKeeper }, parent);
        if (settings.acl.enabled) this.aclTokens = new AclTokens(`${name}-acl`, { management: !primary }, parent);
        if (settings.vm) {
            this.vm = new VmCluster(
                `${name}-vm`,
                {
                    settings: { ...settings, vm: settings.vm },
                    pki: this.pki,
                    gossipKey: this.gossipKey,
                    aclTokens: this.aclTokens,
                    // hybrid: the clients are pods, which this scrape config does not cover.
                    metrics: settings.topology === "vm",
                    primary,
                },
                parent,
            );
            const { acl, aclAccess } = this.vm;
            if (federation?.role === "primary") {
                const dead = new Set(settings.vm.deadHosts);
                this.federation = new FederationPrimary(
                    `${name}-federation`,
                    {
                        settings: {
                            ...settings,
                            secondaries: federation.secondaries,
                            servers: settings.vm.servers.filter((h) => !dead.has(h.name)),
                        },
                        pki: this.pki,
                        gossipKey: this.gossipKey,
                        acl: acl && aclAccess ? { access: aclAccess, step: acl } : undefined,
                    },
                    parent,
                );
            }
        }
        if (settings.kubernetes) {
            const deployed = this.deployKubernetes(name, settings);
            this.kubernetes = deployed.base;
            this.servers = deployed.servers;
            this.clients = deployed.clients;
        }
        this.registerOutputs({});
    }

    /** The rendered secret fragment (gossip key, ACL tokens) of one agent role; a secret. */
    secretConfig(role: AgentRole, selfRegister = false): pulumi.Output<string> {
        const tokens = this.aclTokens;
        return pulumi.secret(
            pulumi
                .all([this.gossipKey.key, tokens?.managementToken, tokens?.agentToken])
                .apply(([gossipKey, managementToken, agentToken]) =>
                    renderJson(
                        agentSecretConfig(role, {
                            gossipKey,
                            managementToken,
                            agentToken,
                            // The self-registration service in the client config needs a token.
                            configFileRegistrationToken: selfRegister ? agentToken : undefined,
                        }),
                    ),
                ),
        );
    }

    /**
     * kubernetes: servers (StatefulSet) and client agents (DaemonSet). hybrid: only the client
     * agents, joining settings.vm.servers, after the VM servers (this.vm) are up.
     */
    private deployKubernetes(
        name: string,
        settings: Settings,
    ): { base: KubernetesBase; servers?: ConsulServers; clients?: ConsulClients } {
        const kube = settings.kubernetes as NonNullable<Settings["kubernetes"]>;
        const base = new KubernetesBase(
            `${name}-k8s`,
            { kubernetes: kube, caCertPem: this.pki.caCertPem },
            { parent: this },
        );
        const common = {
            settings: { ...settings, kubernetes: kube },
            namespace: base.namespace,
            provider: base.provider,
        };
        const after = { parent: this, dependsOn: [base] };
        // hybrid: the agent token Job and the agents talk to the VM servers, so those come first.
        const vmServers: pulumi.Resource[] = this.vm ? [this.vm] : [];
        let servers: ConsulServers | undefined;
        let clients: ConsulClients | undefined;
        if (settings.topology === "kubernetes") {
            servers = new ConsulServers(
                `${name}-servers`,
                {
                    ...common,
                    caCertPem: this.pki.caCertPem,
                    serverCert: this.pki.serverCerts.server,
                    secretConfig: this.secretConfig("server"),
                },
                after,
            );
        }
        let aclJob: ConsulAclAgentToken | undefined;
        if (this.aclTokens) {
            aclJob = new ConsulAclAgentToken(
                `${name}-acl-agent-token`,
                {
                    ...common,
                    caConfigMapName: base.caConfigMapName,
                    // Kubernetes is never a federation secondary, so it has its own management token.
                    managementToken: this.aclTokens.managementToken as pulumi.Output<string>,
                    agentToken: this.aclTokens.agentToken,
                },
                { parent: this, dependsOn: [base, ...(servers ? [servers] : []), ...vmServers] },
            );
        }
        if (servers) {
            // After the StatefulSet (and the ACL Job, whose Secret it reads): MinQuorum and Raft's
            // voters follow the count (manifests/server-count-job.ts).
            new ConsulServerCount(
                `${name}-server-count`,
                { ...common, caConfigMapName: base.caConfigMapName, aclSecretName: aclJob?.secretName },
                { parent: this, dependsOn: [servers, ...(aclJob ? [aclJob] : [])] },
            );
        }
        if (kube.clientsEnabled) {
            const clientBase = base.clients as NonNullable<KubernetesBase["clients"]>;
            clients = new ConsulClients(
                `${name}-clients`,
                {
                    ...common,
                    // Their own namespace, where Pod Security enforces `privileged` (see base.ts).
                    namespace: clientBase.namespace,
                    caCertPem: this.pki.caCertPem,
                    caConfigMapName: clientBase.caConfigMapName,
                    httpsCert: this.pki.clientHttpsCert as NonNullable<ConsulPki["clientHttpsCert"]>,
                    secretConfig: this.secretConfig("client", kube.clientSelfRegister),
                },
                // The agents' auto_encrypt request needs the agent token to exist.
                { parent: this, dependsOn: [base, ...(aclJob ? [aclJob] : []), ...vmServers] },
            );
        }
        return { base, servers, clients };
    }
}
