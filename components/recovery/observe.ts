// What one server's host reports (components/recovery/scripts/inspect.sh and recover.sh's wait
// phase print key=value lines), parsed into a typed observation.

/** A server in a Raft configuration (GET /v1/operator/raft/configuration). */
export interface RaftPeer {
    readonly id: string;
    readonly node: string;
    /** `<ip>:<port>` (IPv6 in brackets). */
    readonly address: string;
    readonly voter: boolean;
}

/** What the inspection found on one server's host. */
export interface HostReport {
    /** `systemctl is-active consul`: active, activating, inactive, failed, ... */
    readonly active: string;
    /** The node-id file's text; undefined when there is no such file. */
    readonly nodeId?: string;
    readonly raftData: boolean;
    readonly peersJson: boolean;
    /** The local HTTPS API answered. */
    readonly apiUp: boolean;
    /** The leader this server sees ("" for none); undefined if the API did not answer. */
    readonly leader?: string;
    /** This server's own Raft configuration; undefined if it could not be read. */
    readonly raft?: readonly RaftPeer[];
}

/** One configured server: did the SSH session run, and what did it report. */
export interface Observation {
    readonly name: string;
    readonly reachable: boolean;
    /** Why the inspection did not run (SSH refused, timed out, the script failed). */
    readonly error?: string;
    readonly report?: HostReport;
}

interface RaftConfiguration {
    Servers: { ID: string; Node: string; Address: string; Voter: boolean }[];
}

/** The Raft configuration's servers, from the API's JSON. */
export function parseRaftConfiguration(json: string): RaftPeer[] {
    const parsed = JSON.parse(json) as RaftConfiguration;
    if (!Array.isArray(parsed.Servers)) throw new Error("the Raft configuration has no Servers list");
    return parsed.Servers.map((s) => ({ id: s.ID, node: s.Node, address: s.Address, voter: s.Voter }));
}

/** The key=value lines a host script printed (other lines, e.g. progress, are ignored). */
export function parseKeyValues(stdout: string): Map<string, string> {
    const values = new Map<string, string>();
    for (const line of stdout.split("\n")) {
        const match = /^([a-z_]+)=(.*)$/.exec(line);
        if (match) values.set(match[1], match[2]);
    }
    return values;
}

/** inspect.sh's output as a HostReport. */
export function parseHostReport(stdout: string): HostReport {
    const v = parseKeyValues(stdout);
    if (!v.has("active") || !v.has("api")) throw new Error(`the inspection printed no report: ${stdout.slice(0, 500)}`);
    const apiUp = v.get("api") === "up";
    const raftText = v.get("raft");
    return {
        active: v.get("active") ?? "",
        nodeId: v.get("node_id"),
        raftData: v.get("raft_data") === "yes",
        peersJson: v.get("peers_json") === "yes",
        apiUp,
        leader: apiUp ? (v.get("leader") ?? "") : undefined,
        raft: raftText ? parseRaftConfiguration(raftText) : undefined,
    };
}

/** The host part of a Raft address (`10.0.0.1:8300`, `[fd00::1]:8300`). */
export function raftHost(address: string): string {
    const match = /^\[(.*)\]:\d+$/.exec(address) ?? /^([^:]*):\d+$/.exec(address);
    return match ? match[1] : address;
}

/** The port of a Raft address, or undefined if it has none. */
export function raftPort(address: string): number | undefined {
    const match = /:(\d+)$/.exec(address);
    return match ? Number(match[1]) : undefined;
}

/**
 * Whether ssh's failure (exit 255) means nothing answered at the address: a time-out, no route, no
 * such name. Anything else (a refused port, a host key that is not the pinned one, a refused login)
 * means a machine is there, and a server named dead must not answer at all.
 */
export function nothingAnswered(sshStderr: string): boolean {
    return /Connection timed out|Operation timed out|No route to host|Network is unreachable|Host is down|Could not resolve hostname|^timed out$/m.test(
        sshStderr,
    );
}
