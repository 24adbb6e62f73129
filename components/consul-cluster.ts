import * as pulumi from "@pulumi/pulumi";
import { AclTokens } from "./acl-tokens";
import { Host, Settings } from "./config";
import { GossipKey } from "./gossip";
import { kubernetesServerDnsNames, kubernetesServerPodDnsName } from "./names";
import { ConsulPki, ServerIdentity } from "./pki";
import { VmCluster } from "./vm-cluster";

/** What a VM server's certificate must be valid for: its node name and the address peers dial. */
export function vmServerIdentity(host: Host): ServerIdentity {
    return {
        name: host.name,
        dnsNames: host.addressIsIp ? [host.name] : [host.name, host.address],
        ipAddresses: host.addressIsIp ? [host.address] : [],
    };
}

/** The server certificates this topology needs: one shared on Kubernetes, one per host on VMs. */
export function serverIdentities(settings: Settings): ServerIdentity[] {
    if (settings.vm) return settings.vm.servers.map(vmServerIdentity);
    const namespace = (settings.kubernetes as NonNullable<Settings["kubernetes"]>).namespace;
    return [{ name: "server", dnsNames: kubernetesServerDnsNames(namespace), ipAddresses: [] }];
}

/** Where the servers' HTTPS API is, as operators and the hybrid clients reach it. */
export function serverAddresses(settings: Settings): string[] {
    const port = settings.ports.https;
    if (settings.vm) {
        return settings.vm.servers.map(
            (h) => `https://${h.address.includes(":") ? `[${h.address}]` : h.address}:${port}`,
        );
    }
    const namespace = (settings.kubernetes as NonNullable<Settings["kubernetes"]>).namespace;
    return Array.from(
        { length: settings.serverCount },
        (_, i) => `https://${kubernetesServerPodDnsName(namespace, i)}:${port}`,
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

/** The whole deployment: shared security material, then the workloads of the chosen topology. */
export class ConsulCluster extends pulumi.ComponentResource {
    public readonly pki: ConsulPki;
    public readonly gossipKey: GossipKey;
    public readonly aclTokens?: AclTokens;
    /** The vm topology's hosts (servers and clients over SSH). */
    public readonly vm?: VmCluster;

    constructor(name: string, settings: Settings, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:ConsulCluster", name, {}, opts);
        const parent = { parent: this };
        this.pki = new ConsulPki(
            `${name}-pki`,
            {
                datacenter: settings.datacenter,
                domain: settings.domain,
                caValidityHours: settings.tls.caValidityHours,
                certValidityHours: settings.tls.certValidityHours,
                earlyRenewalHours: settings.tls.earlyRenewalHours,
                servers: serverIdentities(settings),
            },
            parent,
        );
        this.gossipKey = new GossipKey(`${name}-gossip`, { keeper: settings.gossipKeyKeeper }, parent);
        if (settings.acl.enabled) this.aclTokens = new AclTokens(`${name}-acl`, parent);
        if (settings.topology === "vm") {
            this.vm = new VmCluster(
                `${name}-vm`,
                { settings, pki: this.pki, gossipKey: this.gossipKey, aclTokens: this.aclTokens },
                parent,
            );
        }
        this.registerOutputs({});
    }
}
