// A federation primary (consul:federationSecondaries): the replication token, created by its own
// step after the ACL step, and the secret `federation` output its secondaries read.

import * as pulumi from "@pulumi/pulumi";
import type { remote } from "@pulumi/command";
import type { Host, Settings } from "../config";
import {
    ConsulPki,
    GossipKeySource,
    REPLICATION_POLICY_NAME,
    replicationPolicyBody,
    ReplicationToken,
    replicationTokenAccessorId,
} from "../security";
import { AclStepAccess, stdinTokenCommand } from "../vm/acl-steps";
import type { FederationExport } from "./material";

/** How a WAN peer dials a server: `<address>:<port>`, an IPv6 address in brackets. */
export function wanJoinAddress(host: Pick<Host, "address">, serfWanPort: number): string {
    return host.address.includes(":") ? `[${host.address}]:${serfWanPort}` : `${host.address}:${serfWanPort}`;
}

/** The slice of settings the primary's export is made from. */
export type FederationPrimarySettings = Pick<Settings, "datacenter" | "domain" | "acl" | "ports"> & {
    readonly secondaries: readonly string[];
    /** The live servers, which secondaries join over WAN. */
    readonly servers: readonly Host[];
};

export interface FederationPrimaryArgs {
    readonly settings: FederationPrimarySettings;
    readonly pki: ConsulPki;
    readonly gossipKey: GossipKeySource;
    /** With ACLs: where the replication token is created, after the ACL step. */
    readonly acl?: { readonly access: AclStepAccess; readonly step: remote.Command };
}

export class FederationPrimary extends pulumi.ComponentResource {
    /** The `federation` stack output (a secret). */
    public readonly exported: pulumi.Output<FederationExport>;
    public readonly replicationAcl?: remote.Command;

    constructor(name: string, args: FederationPrimaryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:FederationPrimary", name, {}, opts);
        const { settings, pki } = args;
        let replicationToken: pulumi.Output<string> = pulumi.output("");
        if (args.acl) {
            replicationToken = new ReplicationToken(`${name}-replication-token`, { parent: this }).token;
            this.replicationAcl = stdinTokenCommand(
                `${name}-replication-acl`,
                args.acl.access,
                {
                    policyName: REPLICATION_POLICY_NAME,
                    policyJson: replicationPolicyBody(),
                    tokenName: "replication",
                    description: `ACL replication from ${settings.datacenter} (consul-pulumi)`,
                    accessorId: replicationTokenAccessorId(settings.datacenter),
                },
                replicationToken,
                { parent: this, dependsOn: [args.acl.step] },
            );
        }
        const intermediates = pulumi
            .all(
                settings.secondaries.map((dc) =>
                    pulumi.all([pki.intermediates[dc].certPem, pki.intermediates[dc].privateKeyPem]),
                ),
            )
            .apply((pairs) =>
                Object.fromEntries(pairs.map(([certPem, keyPem], i) => [settings.secondaries[i], { certPem, keyPem }])),
            );
        // The token exists in the primary before a secondary can read the output that names it.
        const created = this.replicationAcl ? this.replicationAcl.stdout : pulumi.output("");
        this.exported = pulumi.secret(
            pulumi
                .all([pki.caCertPem, args.gossipKey.key, replicationToken, intermediates, created])
                .apply(([caCertPem, gossipKey, token, issued]): FederationExport => ({
                    datacenter: settings.datacenter,
                    domain: settings.domain,
                    aclEnabled: settings.acl.enabled,
                    caCertPem,
                    gossipKey,
                    replicationToken: token,
                    wanJoin: settings.servers.map((s) => wanJoinAddress(s, settings.ports.serfWan)),
                    intermediates: issued,
                })),
        );
        this.registerOutputs({});
    }
}
