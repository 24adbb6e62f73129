// The stack config keys this program reads. Pulumi.yaml declares the same keys; a test keeps the
// two identical, so this table is the one place a key, its type, default and description live.

import { DEVELOPMENT_STACKS } from "./stack-kind";
import { kubernetesKeys } from "./schema-kubernetes";
import type { ConfigKeySpec } from "./schema-types";
import { vmKeys } from "./schema-vm";

export type { ConfigKeySpec, ConfigKeyType } from "./schema-types";

/** Consul release the stacks run unless `consulVersion` says otherwise. */
export const DEFAULT_CONSUL_VERSION = "1.16.3";

export const configSchema = {
    // --- cluster shape ---------------------------------------------------------------------
    topology: {
        type: "string",
        default: "kubernetes",
        description:
            "Where Consul runs: kubernetes (servers and clients in the cluster), vm (servers and clients on SSH hosts) or hybrid (servers on SSH hosts, client agents as a Kubernetes DaemonSet).",
    },
    datacenter: { type: "string", default: "dc1", description: "Consul datacenter name (a DNS label)." },
    domain: { type: "string", default: "consul", description: "Consul DNS domain (a DNS label)." },
    consulVersion: {
        type: "string",
        default: DEFAULT_CONSUL_VERSION,
        description: "Consul release to run, as x.y.z (image tag on Kubernetes, release to install on VMs).",
    },
    serverCount: {
        type: "integer",
        default: 3,
        description: "Number of Consul servers: odd, 1 to 7. On vm and hybrid it must equal the number of serverHosts.",
    },
    logLevel: {
        type: "string",
        default: "info",
        description: "Agent log level: trace, debug, info, warn or error.",
    },
    raftMultiplier: {
        type: "integer",
        default: 1,
        description: "performance.raft_multiplier, 1 (fastest leader election, production advice) to 10.",
    },

    // --- ports -----------------------------------------------------------------------------
    httpsPort: { type: "integer", default: 8501, description: "HTTPS API port." },
    httpPort: {
        type: "integer",
        default: -1,
        description: "Plain HTTP API port; -1 (the default) turns plain HTTP off.",
    },
    grpcTlsPort: { type: "integer", default: 8503, description: "gRPC TLS port (Envoy xDS, peering)." },
    dnsPort: { type: "integer", default: 8600, description: "DNS port; -1 turns the DNS interface off." },
    serverRpcPort: { type: "integer", default: 8300, description: "Server RPC port." },
    serfLanPort: { type: "integer", default: 8301, description: "LAN gossip port (TCP and UDP)." },
    serfWanPort: { type: "integer", default: 8302, description: "WAN gossip port (TCP and UDP)." },

    // --- security --------------------------------------------------------------------------
    aclEnabled: { type: "boolean", default: true, description: "Turn the ACL system on." },
    aclDefaultPolicy: {
        type: "string",
        default: "deny",
        description: `ACL default policy: deny or allow. deny is required outside development stacks (named ${DEVELOPMENT_STACKS}).`,
    },
    aclDownPolicy: {
        type: "string",
        default: "extend-cache",
        description: "ACL down policy: allow, deny, extend-cache or async-cache.",
    },
    caValidityHours: {
        type: "integer",
        default: 43800,
        description: "Validity of the cluster CA in hours (default 5 years).",
    },
    certValidityHours: {
        type: "integer",
        default: 8760,
        description: "Validity of server and CLI certificates in hours (default 1 year).",
    },
    certEarlyRenewalHours: {
        type: "integer",
        default: 720,
        description: "A pulumi up this many hours or fewer before a certificate expires re-issues it.",
    },
    caKeeper: {
        type: "string",
        default: "initial",
        description:
            "Names the cluster CA (its key and certificate). A new CA is rolled in by three pulumi ups: see caPreviousKeeper and the certificates runbook; leave it alone otherwise.",
    },
    caPreviousKeeper: {
        type: "string",
        default: "",
        description:
            "During a CA rotation only: the caKeeper being rotated out. Its CA stays trusted (with caKeeper's) until this key is removed.",
    },
    caRotationPhase: {
        type: "string",
        default: "",
        description:
            "During a CA rotation only: trust (every agent trusts both CAs; certificates still from the old one), then reissue (every certificate from the new CA). Remove it with caPreviousKeeper to drop the old CA.",
    },
    gossipKeyKeeper: {
        type: "string",
        default: "1",
        description:
            "Change this value to rotate the gossip key: on VMs the same pulumi up runs the keyring protocol; on Kubernetes follow the key-rotation runbook. Leave it alone otherwise.",
    },

    // --- WAN federation (one stack per datacenter) -----------------------------------------
    federationSecondaries: {
        type: "array",
        default: [],
        description:
            "Primary datacenter only: the secondary datacenters' names. For each, the secret output federation carries an intermediate CA signed by this stack's CA, with the gossip key, a replication token and the WAN join addresses (vm topology).",
    },
    federationPrimaryStack: {
        type: "string",
        default: "",
        description:
            "Secondary datacenter only: the primary's stack as a StackReference names it (e.g. organization/consul/dc1). This datacenter takes its CA, gossip key and replication token from that stack's federation output and joins its servers over WAN (vm topology).",
    },

    // --- telemetry -------------------------------------------------------------------------
    telemetryEnabled: { type: "boolean", default: true, description: "Expose Prometheus metrics." },
    telemetryRetention: {
        type: "string",
        default: "60s",
        description: "telemetry.prometheus_retention_time, a Go duration such as 60s or 5m.",
    },
    ...kubernetesKeys,
    ...vmKeys,
} as const satisfies Record<string, ConfigKeySpec>;

export type ConfigKey = keyof typeof configSchema;
