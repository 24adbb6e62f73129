// The scripts the recovery runs on a server's host: components/vm's common.sh and header, then
// scripts/inspect.sh or scripts/recover.sh. No secret travels in them: the management token is
// read on the host from its root-only file.

import * as path from "path";
import { pathParams, readShellFile, REAL_HOST, renderHostScript, ScriptHost } from "../vm";

function body(name: "inspect" | "recover"): string {
    return readShellFile(path.join(__dirname, "scripts", `${name}.sh`));
}

export interface InspectScriptParams {
    readonly nodeName: string;
    readonly httpsPort: number;
}

/** Prints what the host knows (agent state, node ID, leader, Raft configuration); changes nothing. */
export function inspectScript(p: InspectScriptParams, host: ScriptHost = REAL_HOST): string {
    return renderHostScript(body("inspect"), "lost quorum: inspect one server", {
        NODE: p.nodeName,
        HTTPS_PORT: p.httpsPort,
        ...pathParams(host, ["DATA_DIR"]),
    });
}

export type RecoverPhase = "stop" | "write" | "unwrite" | "start" | "join" | "wait";

export interface RecoverScriptParams {
    readonly nodeName: string;
    readonly httpsPort: number;
    readonly phase: RecoverPhase;
    /** renderPeersJson's text (write). */
    readonly peersJson: string;
    /** `<own address>:<serf LAN port>` (join). */
    readonly joinAddress: string;
    readonly waitSeconds: number;
}

/** One phase of the recovery on one survivor (see scripts/recover.sh). */
export function recoverScript(p: RecoverScriptParams, host: ScriptHost = REAL_HOST): string {
    return renderHostScript(body("recover"), `lost quorum: ${p.phase} on one survivor`, {
        NODE: p.nodeName,
        HTTPS_PORT: p.httpsPort,
        PHASE: p.phase,
        PEERS_JSON: p.peersJson,
        JOIN_ADDRESS: p.joinAddress,
        WAIT_SECONDS: p.waitSeconds,
        ...pathParams(host, ["BIN", "DATA_DIR"]),
    });
}
