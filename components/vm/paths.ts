// Where things live on a VM host. The agent config, the systemd unit, the CLI profile and the
// scripts (as read-only header variables) all take their paths from here.

const CONFIG_DIR = "/etc/consul.d";
const TLS_DIR = `${CONFIG_DIR}/tls`;
const CLI_DIR = `${CONFIG_DIR}/cli`;
const TOKEN_DIR = `${CONFIG_DIR}/tokens`;
const DATA_DIR = "/var/lib/consul";

/** Paths the scripts and the config agree on. */
export const PATHS = {
    binary: "/usr/local/bin/consul",
    configDir: CONFIG_DIR,
    mainConfig: `${CONFIG_DIR}/consul.json`,
    /**
     * Settings Consul reads only when an agent starts or a cluster bootstraps (retry_join,
     * bootstrap_expect, autopilot): a change here is written and reloaded, never a restart.
     */
    joinConfig: `${CONFIG_DIR}/join.json`,
    secretConfig: `${CONFIG_DIR}/secrets.json`,
    /** `encrypt` alone: a new key is rolled out by the keyring protocol, never by a restart. */
    gossipConfig: `${CONFIG_DIR}/gossip.json`,
    tlsDir: TLS_DIR,
    caFile: `${TLS_DIR}/ca.pem`,
    /** Clients: our CA plus the Connect CA roots that sign their auto_encrypt certificate. */
    agentCaBundle: `${TLS_DIR}/agent-ca.pem`,
    serverCert: `${TLS_DIR}/server.pem`,
    /** A federation secondary's clients: their HTTPS listener's certificate, from our CA (see nodeFiles). */
    clientHttpsCert: `${TLS_DIR}/client-https.pem`,
    clientHttpsKey: `${TLS_DIR}/client-https-key.pem`,
    serverKey: `${TLS_DIR}/server-key.pem`,
    cliDir: CLI_DIR,
    cliCert: `${CLI_DIR}/cli.pem`,
    cliKey: `${CLI_DIR}/cli-key.pem`,
    tokenDir: TOKEN_DIR,
    managementTokenFile: `${TOKEN_DIR}/management`,
    agentTokenFile: `${TOKEN_DIR}/agent`,
    dataDir: DATA_DIR,
    /** The keyrings the agent persists (LAN; WAN on servers). Once present they win over `encrypt`. */
    lanKeyring: `${DATA_DIR}/serf/local.keyring`,
    wanKeyring: `${DATA_DIR}/serf/remote.keyring`,
    profile: "/etc/profile.d/consul-cli.sh",
    unit: "/etc/systemd/system/consul.service",
    // Snapshots (servers, with snapshotInterval set; components/vm/snapshot.ts). The rclone config
    // holds the bucket's secret key, so it sits with the tokens, root-only.
    snapshotTokenFile: `${TOKEN_DIR}/snapshot`,
    snapshotRcloneConfig: `${TOKEN_DIR}/snapshot-rclone.conf`,
    snapshotBin: "/usr/local/bin/consul-snapshot",
    snapshotService: "/etc/systemd/system/consul-snapshot.service",
    snapshotTimer: "/etc/systemd/system/consul-snapshot.timer",
    /** Local snapshots, root-only (the service's StateDirectory). */
    snapshotDir: "/var/lib/consul-snapshots",
    // DNS (components/vm/dns.ts): the DNS token's file on the servers (the DNS ACL step reads it;
    // clients hold the token in secretConfig) and the clients' systemd-resolved drop-in.
    dnsTokenFile: `${TOKEN_DIR}/dns`,
    resolvedDropIn: "/etc/systemd/resolved.conf.d/consul-pulumi.conf",
    /** The host's resolver setup, checked (never changed) before the drop-in is installed. */
    resolvConf: "/etc/resolv.conf",
    nsswitchConf: "/etc/nsswitch.conf",
    /** Which rollout step (resource) owns the agent on this host: `server-<name>` or `client-<name>`. */
    owner: `${CONFIG_DIR}/managed-by`,
    /** Present when the apply script created the consul user (removal deletes only such a user). */
    userMarker: `${CONFIG_DIR}/created-consul-user`,
    /** The files (and binary) the last swap replaced, until the new agent is healthy. */
    backupDir: "/etc/.consul-previous",
    /**
     * Where the apply script makes its staging directory (`.consul-stage.XXXXXX`): the file system
     * of every file it swaps in, so each move is a rename.
     */
    stageParent: "/etc",
    /** Where the scripts make their work directory (`consul-pulumi.XXXXXX`: the bundle, downloads). */
    workParent: "/tmp",
} as const;

/** The scripts' PATH on the hosts (they set it, rather than trust the SSH session's). */
export const TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Where a script looks for things on its host: PATHS and TOOL_PATH, unless a test rebases them. */
export interface ScriptHost {
    readonly paths: { readonly [K in keyof typeof PATHS]: string };
    readonly toolPath: string;
}

export const REAL_HOST: ScriptHost = { paths: PATHS, toolPath: TOOL_PATH };
