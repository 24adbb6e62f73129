// The shell scripts that run on the VM hosts, as pure functions. Each script is `#!/bin/sh`, a
// header of read-only quoted assignments rendered from a typed object, then the fixed POSIX sh files
// scripts/common.sh and scripts/<name>.sh, so no value is ever spliced into a body. Secrets never
// appear here: they arrive on stdin (a file bundle whose digest the script checks) or are read from
// root-only files on the host, and the scripts never print them (on failure the command provider
// puts the command text and its combined output in the error message, whatever `logging` says).

import * as fs from "fs";
import * as path from "path";
import { scriptHeader, ScriptParams, shellQuote } from "../shell";
import type { ReleaseKey } from "../security/release-trust";
import { PATHS, REAL_HOST, ScriptHost } from "./paths";

/** How the command provider should invoke a script: as root, through sudo when the user is not. */
export function wrapForUser(script: string, sshUser: string): string {
    const run = `sh -c ${shellQuote(script)} consul-node`;
    return sshUser === "root" ? run : `sudo -n ${run}`;
}

type ScriptFile = "common" | "apply" | "remove" | "acl" | "acl-remove" | "prune" | "keyring" | "snapshot";
const files = new Map<string, string>();

/** A host script's .sh file, read once per process (other folders' scripts too: components/recovery). */
export function readShellFile(file: string): string {
    let text = files.get(file);
    if (text === undefined) {
        text = fs.readFileSync(file, "utf8");
        // A checkout that turned LF into CRLF would send every command a stray \r.
        if (text.includes("\r")) throw new Error(`${file} has CR characters; it must use LF`);
        files.set(file, text);
    }
    return text;
}

/** scripts/<name>.sh. */
function scriptFile(name: ScriptFile): string {
    return readShellFile(path.join(__dirname, "scripts", `${name}.sh`));
}

/** The header variables that carry paths, and the PATHS entry each one holds. */
const PATH_PARAMS = {
    BIN: "binary",
    CONFIG_DIR: "configDir",
    TLS_DIR: "tlsDir",
    CLI_DIR: "cliDir",
    TOKEN_DIR: "tokenDir",
    DATA_DIR: "dataDir",
    MAIN: "mainConfig",
    JOIN: "joinConfig",
    SECRET: "secretConfig",
    GOSSIP: "gossipConfig",
    LAN_KEYRING: "lanKeyring",
    WAN_KEYRING: "wanKeyring",
    CA_FILE: "caFile",
    AGENT_CA: "agentCaBundle",
    MANAGEMENT_TOKEN: "managementTokenFile",
    AGENT_TOKEN: "agentTokenFile",
    PROFILE: "profile",
    UNIT_FILE: "unit",
    OWNER_FILE: "owner",
    USER_MARKER: "userMarker",
    BACKUP: "backupDir",
    WORK_PARENT: "workParent",
    STAGE_PARENT: "stageParent",
    SNAPSHOT_TOKEN: "snapshotTokenFile",
    SNAPSHOT_RCLONE: "snapshotRcloneConfig",
    SNAPSHOT_BIN: "snapshotBin",
    SNAPSHOT_SERVICE: "snapshotService",
    SNAPSHOT_TIMER: "snapshotTimer",
    SNAPSHOT_DIR: "snapshotDir",
    DNS_TOKEN: "dnsTokenFile",
    RESOLVED_DROPIN: "resolvedDropIn",
    RESOLV_CONF: "resolvConf",
    NSSWITCH_CONF: "nsswitchConf",
} as const satisfies Record<string, keyof typeof PATHS>;
export type PathParam = keyof typeof PATH_PARAMS;

/**
 * The path parameters a body reads, plus those common.sh reads (its parameter block): every header
 * carries those, and TOOL_PATH, the script's PATH.
 */
export function pathParams(host: ScriptHost, names: readonly PathParam[]): Record<string, string> {
    const params: Record<string, string> = {};
    for (const name of [...names, "CA_FILE", "MANAGEMENT_TOKEN", "WORK_PARENT", "STAGE_PARENT"] as const) {
        params[name] = host.paths[PATH_PARAMS[name]];
    }
    params.TOOL_PATH = host.toolPath;
    return params;
}

/**
 * `#!/bin/sh`, the header, common.sh and the body, without comment-only lines (the shebang stays):
 * the comments are for readers of the files, and the script travels in every command's inputs and
 * state, quoted once more for `sh -c`.
 */
export function renderScript(body: Exclude<ScriptFile, "common">, title: string, params: ScriptParams): string {
    return renderHostScript(scriptFile(body), title, params);
}

/** render, for a body read elsewhere (readShellFile); `params` must include pathParams' common ones. */
export function renderHostScript(body: string, title: string, params: ScriptParams): string {
    const script = `#!/bin/sh\n# consul-pulumi: ${title}\n` + scriptHeader(params) + scriptFile("common") + body;
    return script
        .split("\n")
        .filter((line, i) => i === 0 || !/^\s*#/.test(line))
        .join("\n");
}

// --- apply: install, stage, validate, swap, restart or reload, wait ------------------------------

export interface ApplyScriptParams {
    readonly nodeName: string;
    readonly role: "server" | "client";
    readonly consulVersion: string;
    readonly installMode: "download" | "preinstalled";
    readonly releaseMirrorUrl: string;
    /** The key the release's SHA256SUMS must be signed with (installMode download). */
    readonly releaseKey: Pick<ReleaseKey, "keyringBase64" | "fingerprint">;
    readonly httpsPort: number;
    readonly serverCount: number;
    /** Servers: the last one in the rollout waits for a leader even on a first deploy. */
    readonly isLastServer: boolean;
    /** Clients: servers' HTTPS base URLs to fetch the Connect CA roots from. */
    readonly serverApiUrls: readonly string[];
    /**
     * Servers: the addresses of the servers before this one in the rollout (already changed by it).
     * A leader hands leadership to one of them, so it moves once rather than once per server.
     */
    readonly updatedServers: readonly string[];
    readonly waitSeconds: number;
    /** Servers with ACLs: bootstrap them with the management token (not in a federation secondary). */
    readonly aclBootstrap: boolean;
    /** sha256 of the stdin bundle; also makes the command change whenever the files do. */
    readonly bundleSha256: string;
}

/**
 * Installs Consul, stages and validates the bundle from stdin, swaps it in, restarts/reloads, waits.
 * `host` rebases the paths and PATH, for tests only.
 */
export function applyScript(p: ApplyScriptParams, host: ScriptHost = REAL_HOST): string {
    if (!/^[0-9a-f]{64}$/.test(p.bundleSha256)) throw new Error("bundleSha256 must be a sha256 hex digest");
    return renderScript("apply", "apply the agent config on one host", {
        NODE: p.nodeName,
        ROLE: p.role,
        VERSION: p.consulVersion,
        INSTALL_MODE: p.installMode,
        MIRROR: p.releaseMirrorUrl,
        // Only a host that downloads needs the key (7.5 kB in every command).
        RELEASE_KEYRING: p.installMode === "download" ? p.releaseKey.keyringBase64 : "",
        RELEASE_KEY_FINGERPRINT: p.releaseKey.fingerprint,
        HTTPS_PORT: p.httpsPort,
        SERVER_COUNT: p.serverCount,
        IS_LAST_SERVER: p.isLastServer ? 1 : 0,
        SERVER_API_URLS: p.serverApiUrls.join(" "),
        UPDATED_SERVERS: p.updatedServers.join(" "),
        WAIT_SECONDS: p.waitSeconds,
        ACL_BOOTSTRAP: p.aclBootstrap ? 1 : 0,
        BUNDLE_SHA256: p.bundleSha256,
        ...pathParams(host, Object.keys(PATH_PARAMS) as PathParam[]),
    });
}

// --- remove ------------------------------------------------------------------------------------

export interface RemoveScriptParams {
    readonly nodeName: string;
    /** Servers in the cluster this one leaves (itself included) when it was last deployed. */
    readonly serverCount: number;
    readonly waitSeconds: number;
    /** The owner id the apply script wrote (`<role>-<node name>`). */
    readonly ownerId: string;
    readonly role: "server" | "client";
    readonly httpsPort: number;
    /** As for the apply script: a downloaded binary is removed with the node, a preinstalled one stays. */
    readonly installMode: "download" | "preinstalled";
}

/** The delete script: graceful leave, then the unit, config, keys, data, binary and user go. */
export function removeScript(p: RemoveScriptParams, host: ScriptHost = REAL_HOST): string {
    return renderScript("remove", "remove the agent from one host", {
        NODE: p.nodeName,
        OWNER_ID: p.ownerId,
        ROLE: p.role,
        HTTPS_PORT: p.httpsPort,
        INSTALL_MODE: p.installMode,
        SERVER_COUNT: p.serverCount,
        WAIT_SECONDS: p.waitSeconds,
        ...pathParams(host, [
            "BIN",
            "CONFIG_DIR",
            "DATA_DIR",
            "PROFILE",
            "UNIT_FILE",
            "OWNER_FILE",
            "USER_MARKER",
            "BACKUP",
            "SNAPSHOT_BIN",
            "SNAPSHOT_SERVICE",
            "SNAPSHOT_TIMER",
            "SNAPSHOT_DIR",
            "RESOLVED_DROPIN",
        ]),
    });
}

// --- prune: remove dead hosts from the cluster, from a live server ------------------------------

export interface PruneScriptParams {
    /** The live server the prune runs on. */
    readonly nodeName: string;
    readonly httpsPort: number;
    /** Node names to remove from the member list and the Raft peers. */
    readonly deadNodes: readonly string[];
    readonly waitSeconds: number;
}

/** Force-leaves and prunes dead nodes, removes dead servers from Raft, then waits for health. */
export function pruneScript(p: PruneScriptParams, host: ScriptHost = REAL_HOST): string {
    for (const name of p.deadNodes) {
        if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) throw new Error(`bad node name ${name}`);
    }
    return renderScript("prune", "prune dead hosts from the cluster", {
        NODE: p.nodeName,
        HTTPS_PORT: p.httpsPort,
        DEAD_NODES: [...p.deadNodes].sort().join(" "),
        WAIT_SECONDS: p.waitSeconds,
        ...pathParams(host, ["BIN"]),
    });
}

// --- snapshot: save on the leader, inspect, upload, prune; or restore (a file on the servers) ----

export interface SnapshotScriptParams {
    readonly nodeName: string;
    readonly httpsPort: number;
    readonly aclEnabled: boolean;
    /** The rclone remote and path the snapshots go to: `<remote>:<bucket>/<datacenter>`. */
    readonly remote: string;
    readonly retain: number;
    readonly waitSeconds: number;
}

/** The script the snapshot service runs (`save`) and the restore runbook calls (`list`, `restore`). */
export function snapshotScript(p: SnapshotScriptParams, host: ScriptHost = REAL_HOST): string {
    if (!Number.isInteger(p.retain) || p.retain < 1) throw new Error("retain must be a whole number of at least 1");
    return renderScript("snapshot", "Consul snapshots: save on the leader, upload, prune; list; restore", {
        NODE: p.nodeName,
        HTTPS_PORT: p.httpsPort,
        ACL: p.aclEnabled ? 1 : 0,
        REMOTE: p.remote,
        RETAIN: p.retain,
        WAIT_SECONDS: p.waitSeconds,
        ...pathParams(host, ["BIN", "SNAPSHOT_TOKEN", "SNAPSHOT_RCLONE", "SNAPSHOT_DIR"]),
    });
}
