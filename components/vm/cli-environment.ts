// Pure: the environment the Consul CLI needs on a host, and the profile.d script that sets it.

import type { AgentRole } from "../agent";
import type { Settings } from "../config";
import { shellQuote } from "../shell";
import { PATHS } from "./paths";

/** The environment the CLI needs on a host (seed 002's /etc/profile.d/consul-cli.sh). */
export interface CliEnvironment {
    readonly CONSUL_HTTP_ADDR: string;
    readonly CONSUL_CACERT: string;
    readonly CONSUL_CLIENT_CERT?: string;
    readonly CONSUL_CLIENT_KEY?: string;
    readonly CONSUL_HTTP_TOKEN_FILE?: string;
}

export function hostCliEnvironment(settings: Pick<Settings, "ports">, role: AgentRole): CliEnvironment {
    const addr = `https://127.0.0.1:${settings.ports.https}`;
    if (role === "client") return { CONSUL_HTTP_ADDR: addr, CONSUL_CACERT: PATHS.agentCaBundle };
    return {
        CONSUL_HTTP_ADDR: addr,
        CONSUL_CACERT: PATHS.caFile,
        CONSUL_CLIENT_CERT: PATHS.cliCert,
        CONSUL_CLIENT_KEY: PATHS.cliKey,
        CONSUL_HTTP_TOKEN_FILE: PATHS.managementTokenFile,
    };
}

/**
 * /etc/profile.d/consul-cli.sh from the typed environment. The CLI certificate, key and token file
 * are readable by root only, so those variables are set for root only (other users would get
 * "permission denied" from the CLI instead of a useful error from the API).
 */
export function renderProfile(env: CliEnvironment): string {
    const rootOnly = new Set(["CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY", "CONSUL_HTTP_TOKEN_FILE"]);
    const lines = ["# Managed by consul-pulumi: the Consul CLI talks to the local agent over HTTPS."];
    const entries = Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined);
    for (const [name, value] of entries.filter(([n]) => !rootOnly.has(n))) {
        lines.push(`export ${name}=${shellQuote(value)}`);
    }
    const privileged = entries.filter(([n]) => rootOnly.has(n));
    if (privileged.length > 0) {
        lines.push('if [ "$(id -u)" -eq 0 ]; then');
        for (const [name, value] of privileged) lines.push(`    export ${name}=${shellQuote(value)}`);
        lines.push("fi");
    }
    return lines.join("\n") + "\n";
}
