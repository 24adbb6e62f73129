// How the recovery reaches a server: OpenSSH with the stack's pinned host key and nothing else
// (a temporary known_hosts, StrictHostKeyChecking=yes), so no unverified host is ever contacted.

import type { Host } from "../config";

/** The host key algorithms OpenSSH must ask for to get the pinned key's type. */
const ALGORITHMS: Record<string, string> = {
    "ssh-ed25519": "ssh-ed25519",
    "ssh-rsa": "rsa-sha2-512,rsa-sha2-256",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
};

/** known_hosts lines, one per host, keyed by the node name (ssh's HostKeyAlias). */
export function knownHostsText(hostKeys: Readonly<Record<string, string>>, hosts: readonly Host[]): string {
    return hosts
        .map((h) => {
            const key = hostKeys[h.name];
            if (key === undefined) throw new Error(`${h.name} has no pinned host key`);
            return `${h.name} ${key}\n`;
        })
        .join("");
}

export interface SshTarget {
    readonly host: Host;
    readonly user: string;
    /** The pinned "<type> <base64>". */
    readonly hostKey: string;
    readonly keyFile: string;
    readonly knownHostsFile: string;
    readonly connectTimeoutSeconds?: number;
}

/** The ssh arguments that run `command` (one string, as the remote shell gets it) on the target. */
export function sshArgs(t: SshTarget, command: string): string[] {
    const type = t.hostKey.split(" ")[0];
    const algorithms = ALGORITHMS[type];
    if (algorithms === undefined) throw new Error(`${t.host.name}: unsupported host key type ${type}`);
    const options = {
        StrictHostKeyChecking: "yes",
        UserKnownHostsFile: t.knownHostsFile,
        GlobalKnownHostsFile: "/dev/null",
        HostKeyAlias: t.host.name,
        HostKeyAlgorithms: algorithms,
        CheckHostIP: "no",
        UpdateHostKeys: "no",
        BatchMode: "yes",
        IdentitiesOnly: "yes",
        IdentityAgent: "none",
        ControlPath: "none",
        ConnectTimeout: String(t.connectTimeoutSeconds ?? 10),
        LogLevel: "ERROR",
    };
    return [
        ...Object.entries(options).flatMap(([k, v]) => ["-o", `${k}=${v}`]),
        ...["-i", t.keyFile, "-p", String(t.host.sshPort), "-l", t.user],
        t.host.address,
        "--",
        command,
    ];
}
