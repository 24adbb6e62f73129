// The stack config keys this program reads. Pulumi.yaml declares the same keys; a test keeps the
// two identical, so this table is the one place a key, its type, default and description live.

import { DEVELOPMENT_STACKS } from "./stack-kind";

export type ConfigKeyType = "string" | "integer" | "boolean" | "array";

export interface ConfigKeySpec {
    readonly type: ConfigKeyType;
    readonly description: string;
    /** Absent means "no default": the key is optional or required depending on the topology. */
    readonly default?: string | number | boolean | readonly string[];
    readonly secret?: boolean;
}

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

    // --- telemetry -------------------------------------------------------------------------
    telemetryEnabled: { type: "boolean", default: true, description: "Expose Prometheus metrics." },
    telemetryRetention: {
        type: "string",
        default: "60s",
        description: "telemetry.prometheus_retention_time, a Go duration such as 60s or 5m.",
    },

    // --- Kubernetes ------------------------------------------------------------------------
    k8sNamespace: { type: "string", default: "consul", description: "Namespace for the Consul workloads." },
    k8sCreateNamespace: { type: "boolean", default: true, description: "Create the namespace." },
    k8sKubeconfig: {
        type: "string",
        default: "",
        description: "Path to a kubeconfig file; empty uses the ambient kubeconfig.",
    },
    k8sContext: { type: "string", default: "", description: "kubeconfig context; empty uses the current one." },
    image: {
        type: "string",
        default: "",
        description: "Consul container image; empty means hashicorp/consul:<consulVersion>.",
    },
    storageClass: {
        type: "string",
        default: "",
        description: "StorageClass of the server volumes (e.g. a GlusterFS class); empty uses the default class.",
    },
    storageSize: { type: "string", default: "10Gi", description: "Size of each server's data volume." },
    pvcRetentionWhenDeleted: {
        type: "string",
        default: "Retain",
        description: "StatefulSet PVC retention when the StatefulSet is deleted: Retain or Delete.",
    },
    pvcRetentionWhenScaled: {
        type: "string",
        default: "Retain",
        description: "StatefulSet PVC retention when it is scaled down: Retain or Delete.",
    },
    antiAffinity: {
        type: "string",
        default: "required",
        description: "Server pod anti-affinity by node: required (production) or preferred (one-node clusters).",
    },
    uiServiceType: {
        type: "string",
        default: "ClusterIP",
        description: "Type of the UI/API Service: ClusterIP, NodePort or LoadBalancer.",
    },
    updatePartition: {
        type: "integer",
        default: 0,
        description: "StatefulSet rollingUpdate partition, for staged server upgrades (0 rolls every server).",
    },
    serverCpuRequest: { type: "string", default: "500m", description: "Server container CPU request." },
    serverCpuLimit: { type: "string", default: "500m", description: "Server container CPU limit." },
    serverMemoryRequest: { type: "string", default: "512Mi", description: "Server container memory request." },
    serverMemoryLimit: { type: "string", default: "512Mi", description: "Server container memory limit." },
    clientCpuRequest: { type: "string", default: "100m", description: "Client container CPU request." },
    clientCpuLimit: { type: "string", default: "100m", description: "Client container CPU limit." },
    clientMemoryRequest: { type: "string", default: "128Mi", description: "Client container memory request." },
    clientMemoryLimit: { type: "string", default: "128Mi", description: "Client container memory limit." },
    clientsEnabled: {
        type: "boolean",
        default: true,
        description: "Run client agents as a DaemonSet (kubernetes and hybrid topologies).",
    },
    clientNetworkMode: {
        type: "string",
        default: "hostNetwork",
        description:
            "How client agents reach the node network: hostNetwork (seed 003) or hostPort (needs CNI support).",
    },
    clientDataHostPath: {
        type: "string",
        default: "/var/lib/consul-client",
        description: "Host directory that keeps each client agent's data (and node ID) across pod restarts.",
    },
    clientTolerateAll: {
        type: "boolean",
        default: true,
        description: "Tolerate every taint so a client agent runs on every node.",
    },
    k8sAppNamespaces: {
        type: "array",
        default: [],
        description:
            "Namespaces of applications that talk to Consul; each gets a consul-ca ConfigMap with the cluster CA (not a secret).",
    },
    clientSelfRegister: {
        type: "boolean",
        default: true,
        description:
            "Register each client agent (DaemonSet pods and clientHosts) as a monitored service, consul-client (seed 003's postStart script, declaratively); Prometheus finds the clients through it.",
    },

    // --- VMs -------------------------------------------------------------------------------
    serverHosts: {
        type: "array",
        default: [],
        description: "Server hosts (vm, hybrid), each <node-name>=<address>[:ssh-port]; address is an IP or hostname.",
    },
    clientHosts: {
        type: "array",
        default: [],
        description: "Client hosts (vm), each <node-name>=<address>[:ssh-port].",
    },
    sshUser: { type: "string", default: "root", description: "SSH user on the hosts (root, or a user with sudo)." },
    sshPrivateKeyPath: {
        type: "string",
        default: "",
        description: "Path to the SSH private key on the machine that runs pulumi; or set sshPrivateKey.",
    },
    // Declared plain with an empty default: the engine requires a value for any key without a default,
    // and refuses a plain default on a `secret: true` key. A value set with --secret stays encrypted.
    sshPrivateKey: {
        type: "string",
        default: "",
        description:
            "The SSH private key itself; set it with pulumi config set --secret sshPrivateKey < key. Or set sshPrivateKeyPath.",
    },
    sshBastion: {
        type: "string",
        default: "",
        description: "Optional bastion as [user@]host[:port]; the same key is used for it.",
    },
    sshHostKeys: {
        type: "array",
        default: [],
        description: `Pinned SSH host keys, each <node-name>=<type> <base64> (as in known_hosts, without the host). Required for every host outside development stacks (named ${DEVELOPMENT_STACKS}).`,
    },
    installMode: {
        type: "string",
        default: "download",
        description: "download (fetch and verify the release) or preinstalled (a consul binary is already on PATH).",
    },
    releaseMirrorUrl: {
        type: "string",
        default: "https://releases.hashicorp.com",
        description:
            "Base URL serving consul/<version>/consul_<version>_linux_<arch>.zip, its SHA256SUMS and HashiCorp's SHA256SUMS.sig (a mirror serves the same signed files).",
    },
    releaseMirrorAllowHttp: {
        type: "boolean",
        default: false,
        description:
            "Accept a plain http releaseMirrorUrl (a mirror on a trusted network); the release signature is checked either way.",
    },
    clientBatchSize: {
        type: "integer",
        default: 5,
        description: "How many client hosts are changed at once after the servers are done.",
    },
    deadHosts: {
        type: "array",
        default: [],
        description:
            "Node names (still listed in serverHosts or clientHosts) whose machines are gone for good: they are removed from the cluster from a live server and never contacted. Drop a host from both lists afterwards.",
    },

    // --- DNS (vm) ----------------------------------------------------------------------------
    dnsDefaultToken: {
        type: "boolean",
        default: false,
        description:
            "vm, with ACLs: give client agents a token that reads every node and service as acl.tokens.default, so their DNS interface answers under aclDefaultPolicy deny. Consul 1.16 also uses it for HTTP requests without a token: anyone who reaches a client's API can then list nodes and services (nothing else). Servers never get it.",
    },
    dnsForwarder: {
        type: "string",
        default: "none",
        description:
            "vm: none, or systemd-resolved (a drop-in on each client sends names under the Consul domain to the local agent's DNS port, so getent hosts web.service.consul works; systemd-resolved must be the host's resolver). Under aclDefaultPolicy deny it needs dnsDefaultToken.",
    },

    // --- snapshots (vm, hybrid: the VM servers) ----------------------------------------------
    snapshotInterval: {
        type: "string",
        default: "",
        description:
            "How often each server's timer runs consul snapshot save (only the leader's run saves), as a systemd time span such as 1h or 30min (at least 1min); empty (the default) turns snapshots off, and the other snapshot keys then stay unset.",
    },
    snapshotRetain: {
        type: "integer",
        default: 24,
        description: "How many snapshots to keep, on the servers and in the bucket each (the newest).",
    },
    snapshotS3Endpoint: {
        type: "string",
        default: "",
        description:
            "URL of the S3-compatible service the snapshots are copied to (with rclone), e.g. https://s3.eu-west-1.amazonaws.com.",
    },
    snapshotS3AllowHttp: {
        type: "boolean",
        default: false,
        description:
            "Accept a plain http snapshotS3Endpoint (a service on a network you trust): a snapshot holds every ACL token and KV value.",
    },
    snapshotS3Bucket: {
        type: "string",
        default: "",
        description: "The bucket the snapshots go to, under <datacenter>/ (it must exist).",
    },
    snapshotS3Region: { type: "string", default: "us-east-1", description: "The bucket's region." },
    snapshotS3AccessKeyId: {
        type: "string",
        default: "",
        description: "Access key ID of the credentials that write (and prune) the snapshots.",
    },
    // Declared plain with an empty default, like sshPrivateKey; a value set with --secret stays encrypted.
    snapshotS3SecretAccessKey: {
        type: "string",
        default: "",
        description:
            "Secret access key of those credentials; set it with pulumi config set --secret snapshotS3SecretAccessKey.",
    },

    // --- application tokens (vm) ------------------------------------------------------------
    appTokens: {
        type: "array",
        default: [],
        description:
            "Apps (Consul service names) that each get an ACL token allowed to register that service, write KV under <name>/ and read the catalog; made by the ACL step and exported in the secret output appTokens. vm topology, ACLs on.",
    },
} as const satisfies Record<string, ConfigKeySpec>;

export type ConfigKey = keyof typeof configSchema;
