// The gossip-key rotation's two cluster steps (keyring-install before the rollout, keyring-finish
// after it, on the first live server): scripts/keyring.sh with its header. Pure.

import { REAL_HOST, ScriptHost } from "./paths";
import { pathParams, renderScript } from "./scripts";

export interface KeyringScriptParams {
    /** The live server the step runs on. */
    readonly nodeName: string;
    /** install: before the rollout, the key joins every keyring; finish: after it, the only key. */
    readonly phase: "install" | "finish";
    readonly httpsPort: number;
    /** Every live server's HTTPS base URL: the step asks the first that answers. */
    readonly serverApiUrls: readonly string[];
    /** sha256 of the key on stdin; also makes the command change whenever the key does. */
    readonly keySha256: string;
    readonly waitSeconds: number;
}

/** Installs (phase install) or settles on (phase finish) the gossip key read from stdin. */
export function keyringScript(p: KeyringScriptParams, host: ScriptHost = REAL_HOST): string {
    if (!/^[0-9a-f]{64}$/.test(p.keySha256)) throw new Error("keySha256 must be a sha256 hex digest");
    return renderScript("keyring", `gossip keyring, ${p.phase}`, {
        NODE: p.nodeName,
        PHASE: p.phase,
        HTTPS_PORT: p.httpsPort,
        SERVER_API_URLS: p.serverApiUrls.join(" "),
        KEY_SHA256: p.keySha256,
        WAIT_SECONDS: p.waitSeconds,
        ...pathParams(host, []),
    });
}
