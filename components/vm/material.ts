// The secret material each VM host's files are made from (keys, certificates, tokens), as few
// Outputs as the hosts need.

import * as pulumi from "@pulumi/pulumi";
import type { AgentRole } from "../agent";
import type { Host } from "../config";
import type { AclTokens, ConsulPki, DnsToken, GossipKey } from "../security";
import type { NodeMaterial } from "./host-files";

/** What the material comes from. */
export interface MaterialSources {
    readonly pki: ConsulPki;
    readonly gossipKey: GossipKey;
    readonly aclTokens?: AclTokens;
}

/** The secret material one host's files are made from. */
export type HostMaterial = (role: AgentRole, host: Host) => pulumi.Output<NodeMaterial>;

/**
 * The parts every host shares are one Output for the whole cluster, and so are the parts servers
 * add; a server's own certificate is the only per-host input (an 8-way pulumi.all per host cost
 * seven Outputs a host).
 */
export function hostMaterial(args: MaterialSources, dnsToken?: DnsToken): HostMaterial {
    const { pki, aclTokens } = args;
    const tokens = [aclTokens ? aclTokens.agentToken : "", dnsToken ? dnsToken.token : ""];
    const shared = pulumi
        .secret(pulumi.all([pki.caCertPem, args.gossipKey.key, ...tokens]))
        .apply(([caCertPem, gossipKey, agentToken, dns]) => ({
            caCertPem,
            gossipKey,
            agentToken: agentToken || undefined,
            ...(dns ? { dnsToken: dns } : {}),
        }));
    const servers = pulumi
        .all([shared, pki.cliCert.certPem, pki.cliCert.privateKeyPem, aclTokens ? aclTokens.managementToken : ""])
        .apply(([common, cliCertPem, cliKeyPem, management]) => ({
            ...common,
            cliCertPem,
            cliKeyPem,
            managementToken: management || undefined,
        }));
    return (role, host) => {
        if (role === "client") return shared;
        const cert = pki.serverCerts[host.name];
        return pulumi
            .all([servers, cert.certPem, cert.privateKeyPem])
            .apply(([common, serverCertPem, serverKeyPem]) => ({ ...common, serverCertPem, serverKeyPem }));
    };
}
