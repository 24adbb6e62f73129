// What the VM script tests share: sample parameters, every script rendered, and the shell and
// shellcheck runners.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import { agentPolicyBody as agentPolicyJson, AGENT_POLICY_NAME } from "../../components/security/agent-policy";
import { releaseKey } from "../../components/security/release-trust";
import { ScriptHost } from "../../components/vm/paths";
import { aclScript } from "../../components/vm/acl-steps";
import {
    applyScript,
    ApplyScriptParams,
    pruneScript,
    removeScript,
    RemoveScriptParams,
} from "../../components/vm/scripts";
import { keyringScript, KeyringScriptParams } from "../../components/vm/keyring";
import { appTokenRemoveScript, appTokenScript } from "../../components/vm/app-tokens";
import type { Host } from "../../components/config";

export const applyBase: ApplyScriptParams = {
    nodeName: "consul-server-1",
    role: "server",
    consulVersion: "1.16.2",
    installMode: "download",
    releaseMirrorUrl: "https://releases.hashicorp.com",
    releaseKey: releaseKey({}),
    httpsPort: 8501,
    serverCount: 3,
    isLastServer: false,
    serverApiUrls: [],
    updatedServers: [],
    waitSeconds: 300,
    aclBootstrap: true,
    bundleSha256: "0".repeat(64),
};

export const removeBase: RemoveScriptParams = {
    nodeName: "s1",
    ownerId: "server-s1",
    role: "server",
    httpsPort: 8501,
    installMode: "download",
    serverCount: 3,
    waitSeconds: 300,
};

export const SCRIPT_FILES = path.join(__dirname, "..", "..", "components", "vm", "scripts");

export function sh(script: string, input = ""): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync("sh", ["-c", script], { input, encoding: "utf8" });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

// check-unassigned-uppercase: the scripts' parameters are upper case, which shellcheck otherwise
// assumes to come from the environment; with it, a misspelt parameter name is an error.
export function shellcheck(script: string): { status: number | null; output: string } {
    const result = spawnSync(
        "shellcheck",
        ["--shell=sh", "--severity=style", "--enable=check-unassigned-uppercase", "-"],
        { input: script, encoding: "utf8" },
    );
    if (result.error) throw result.error;
    return { status: result.status, output: result.stdout + result.stderr };
}

export const hasShellcheck = spawnSync("shellcheck", ["--version"]).status === 0;

/** The header's NAME='value' pairs, and the names the files' `readonly A B C` blocks declare. */
export function parameters(script: string): { header: Map<string, string>; declared: Set<string> } {
    const header = new Map<string, string>();
    const declared = new Set<string>();
    for (const line of script.replace(/\\\n\s*/g, " ").split("\n")) {
        const assigned = /^readonly ([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
        if (assigned) {
            assert.ok(!header.has(assigned[1]), `${assigned[1]} twice in the header`);
            header.set(assigned[1], sh(`printf '%s' ${assigned[2]}`).stdout);
        } else if (/^readonly [A-Z0-9_ ]+$/.test(line)) {
            for (const name of line.slice("readonly ".length).trim().split(/\s+/)) declared.add(name);
        }
    }
    return { header, declared };
}

export const keyringBase: KeyringScriptParams = {
    nodeName: "s1",
    phase: "install",
    httpsPort: 8501,
    serverApiUrls: ["https://10.0.0.11:8501", "https://10.0.0.12:8501"],
    keySha256: "0".repeat(64),
    waitSeconds: 300,
};

export const everyScript: [string, (host?: ScriptHost) => string][] = [
    ["apply, server, download", (host) => applyScript(applyBase, host)],
    [
        "apply, client, preinstalled",
        (host) =>
            applyScript(
                {
                    ...applyBase,
                    role: "client",
                    installMode: "preinstalled",
                    serverApiUrls: ["https://10.0.0.1:8501", "https://[fd00::1]:8501"],
                },
                host,
            ),
    ],
    ["apply, last server", (host) => applyScript({ ...applyBase, isLastServer: true, serverCount: 1 }, host)],
    ["remove, server", (host) => removeScript(removeBase, host)],
    [
        "remove, client",
        (host) => removeScript({ ...removeBase, nodeName: "c1", ownerId: "client-c1", role: "client" }, host),
    ],
    [
        "prune",
        (host) => pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: ["s4", "s5"], waitSeconds: 300 }, host),
    ],
    [
        "acl",
        (host) =>
            aclScript(
                {
                    nodeName: "s1",
                    httpsPort: 8501,
                    policyName: AGENT_POLICY_NAME,
                    policyJson: agentPolicyJson(),
                    waitSeconds: 300,
                },
                host,
            ),
    ],
    ["acl, app token", (host) => appTokenScript("web", { name: "s1" } as Host, 8501, 300, host)],
    ["acl-remove, app token", (host) => appTokenRemoveScript("web", { name: "s1" } as Host, 8501, 300, host)],
    ["keyring, install", (host) => keyringScript(keyringBase, host)],
    ["keyring, finish", (host) => keyringScript({ ...keyringBase, phase: "finish" }, host)],
];
