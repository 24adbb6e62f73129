// raft/peers.json, Consul's manual outage recovery file: every surviving server, as a voter.

/** One entry of peers.json, as Consul reads it (Raft protocol 3: the server's node ID). */
export interface PeersEntry {
    readonly id: string;
    /** `<address>:<server RPC port>`, as in the Raft configuration. */
    readonly address: string;
    readonly non_voter: boolean;
}

/** A surviving server: its node ID and its Raft address. */
export interface Survivor {
    readonly nodeId: string;
    readonly raftAddress: string;
}

const NODE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether a node-id file's text is a node ID Consul would have written (a lower-case UUID). */
export function isNodeId(text: string): boolean {
    return NODE_ID.test(text);
}

/** The entries, in the order given, every survivor a voter. */
export function peersEntries(survivors: readonly Survivor[]): PeersEntry[] {
    if (survivors.length === 0) throw new Error("peers.json needs at least one server");
    const ids = new Set<string>();
    return survivors.map((s) => {
        if (!isNodeId(s.nodeId)) throw new Error(`"${s.nodeId}" is not a node ID`);
        if (ids.has(s.nodeId)) throw new Error(`node ID ${s.nodeId} is listed twice`);
        ids.add(s.nodeId);
        return { id: s.nodeId, address: s.raftAddress, non_voter: false };
    });
}

/** peers.json's text: one line, so it can travel as a script header value. */
export function renderPeersJson(survivors: readonly Survivor[]): string {
    return JSON.stringify(peersEntries(survivors));
}
