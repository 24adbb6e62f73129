// The SSH hosts' stack config keys (vm, and hybrid's servers): hosts, SSH, releases, DNS,
// snapshots, app tokens. Part of the one table of keys, which ./schema.ts composes.

import { DEVELOPMENT_STACKS } from "./stack-kind";
import type { ConfigKeySpec } from "./schema-types";

export const vmKeys = {
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
