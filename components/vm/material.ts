// The secret material each VM host's files are made from (keys, certificates, tokens), as few
// Outputs as the hosts need.

import * as pulumi from "@pulumi/pulumi";
import type { AgentRole } from "../agent";
import type { Host } from "../config";
import type { AclTokens, ConsulPki, DnsToken, GossipKeySource } from "../security";
import type { PrimaryMaterial } from "../federation/material";
import type { NodeMaterial } from "./host-files";

/** What the material comes from. */
export interface MaterialSources {
    readonly pki: ConsulPki;
    readonly gossipKey: GossipKeySource;
    readonly aclTokens?: AclTokens;
    /** A federation secondary: what it takes from the primary's federation output (a secret). */
    readonly primary?: pulumi.Output<PrimaryMaterial>;
}

/** The secret material one host's files are made from. */
export type HostMaterial = (role: AgentRole, host: Host) => pulumi.Output<NodeMaterial>;

/**
 * The parts every host shares are one Output for the whole cluster, and so are the parts servers
 * add; a server's own certificate (a secondary's client's HTTPS one) is the only per-host input
 * (an 8-way pulumi.all per host cost seven Outputs a host).
 */
export function hostMaterial(args: MaterialSources, dnsToken?: DnsToken): HostMaterial {
    const { pki, aclTokens, primary } = args;
    const tokens = pulumi.all([aclTokens ? aclTokens.agentToken : "", dnsToken ? dnsToken.token : ""]);
    const fromPrimary: pulumi.Output<PrimaryMaterial | undefined> = primary ?? pulumi.output(undefined);
    const shared = pulumi
        .secret(pulumi.all([pki.caCertPem, args.gossipKey.key, fromPrimary, tokens]))
        .apply(([caCertPem, gossipKey, federation, [agentToken, dns]]): NodeMaterial => ({
            caCertPem,
            gossipKey,
            agentToken: agentToken || undefined,
            ...(dns ? { dnsToken: dns } : {}),
            ...(federation
                ? {
                      federation: {
                          primaryDatacenter: federation.primaryDatacenter,
                          retryJoinWan: federation.wanJoin,
                          replicationToken: federation.replicationToken,
                      },
                  }
                : {}),
        }));
    // A secondary never bootstraps ACLs: its servers administer them with the replication token.
    const admin = aclTokens?.managementToken ?? "";
    const servers = pulumi
        .all([shared, pki.cliCert.certPem, pki.cliCert.privateKeyPem, admin])
        .apply(([common, cliCertPem, cliKeyPem, management]) => ({
            ...common,
            cliCertPem,
            cliKeyPem,
            managementToken: management || common.federation?.replicationToken || undefined,
        }));
    return (role, host) => {
        if (role === "client") {
            const https = pki.clientHttpsCerts[host.name];
            if (!https) return shared;
            return pulumi
                .all([shared, https.certPem, https.privateKeyPem])
                .apply(([common, clientHttpsCertPem, clientHttpsKeyPem]) => ({
                    ...common,
                    clientHttpsCertPem,
                    clientHttpsKeyPem,
                }));
        }
        const cert = pki.serverCerts[host.name];
        return pulumi
            .all([servers, cert.certPem, cert.privateKeyPem])
            .apply(([common, serverCertPem, serverKeyPem]) => ({ ...common, serverCertPem, serverKeyPem }));
    };
}
