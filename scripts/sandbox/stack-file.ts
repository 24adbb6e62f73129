// Pulumi.sandbox.yaml, rendered from the sandbox's hosts: a `vm` stack on the nspawn hosts that
// `npm run sandbox -- up` booted, each host key pinned as on real hosts, Consul preinstalled.

import * as yaml from "js-yaml";

/** One booted sandbox host: its node name, bridge address and the SSH host key its sshd presents. */
export interface SandboxHost {
    readonly name: string;
    readonly address: string;
    readonly hostKey: string;
}

export interface SandboxLayout {
    readonly servers: readonly SandboxHost[];
    readonly clients: readonly SandboxHost[];
    /** The private key hosts.sh authorised for root on every host. */
    readonly sshPrivateKeyPath: string;
    readonly consulVersion: string;
}

/** The marker on the file's first line: `down` removes only a file that carries it. */
export const STACK_FILE_MARKER = "# Written by `npm run sandbox -- up`; `npm run sandbox -- down` removes it.";

/** The stack's config, keys with the `consul:` prefix, in the order an operator reads them. */
export function sandboxStackConfig(layout: SandboxLayout): Record<string, string | number | string[]> {
    const entry = (h: SandboxHost) => `${h.name}=${h.address}`;
    return {
        "consul:topology": "vm",
        "consul:datacenter": "sandbox",
        "consul:serverCount": layout.servers.length,
        "consul:serverHosts": layout.servers.map(entry),
        "consul:clientHosts": layout.clients.map(entry),
        "consul:sshHostKeys": [...layout.servers, ...layout.clients].map((h) => `${h.name}=${h.hostKey}`),
        "consul:sshUser": "root",
        "consul:sshPrivateKeyPath": layout.sshPrivateKeyPath,
        // The hosts cannot reach releases.hashicorp.com; the sandbox copies the binary it built
        // onto each of them, so no signing key other than HashiCorp's is ever trusted.
        "consul:installMode": "preinstalled",
        "consul:consulVersion": layout.consulVersion,
        "consul:aclDefaultPolicy": "deny",
    };
}

/** The whole file: the marker, what the stack is, then `config:`. */
export function renderStackFile(layout: SandboxLayout): string {
    const header = [
        STACK_FILE_MARKER,
        `# ${layout.servers.length} servers and ${layout.clients.length} clients on systemd-nspawn hosts on a private`,
        "# bridge of this machine; Consul preinstalled (installMode), host keys pinned as on real hosts.",
    ];
    const body = yaml.dump({ config: sandboxStackConfig(layout) }, { lineWidth: -1, quotingType: '"' });
    return `${header.join("\n")}\n${body}`;
}
