// The VM app stack's settings, validated before any resource is registered: every problem at once,
// each naming the key, the value and the fix (as the Consul project's components/config does).

import { APP_NAME } from "../../components/config/app-tokens";
import { isDevelopmentStack, isIpAddress } from "../../components/config";

export interface VmAppSettings {
    /** `<organization>/<project>/<stack>` of the Consul stack. */
    readonly consulStack: string;
    readonly app: string;
    readonly host: string;
    readonly sshPort: number;
    readonly sshUser: string;
    readonly sshPrivateKeyPath: string;
    /** "<type> <base64>"; required outside development stacks. */
    readonly sshHostKey?: string;
}

const STACK_REF = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const HOST_KEY =
    /^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) AAAA[A-Za-z0-9+/]+={0,3}$/;

/** Pure: raw config (keys without the project prefix) to settings, or an Error listing every problem. */
export function readVmAppConfig(raw: Readonly<Record<string, string>>, project: string, stack: string): VmAppSettings {
    const problems: string[] = [];
    const add = (k: string, value: unknown, fix: string) =>
        problems.push(`${project}:${k} = ${JSON.stringify(value)}: ${fix}`);
    const known = ["consulStack", "app", "host", "sshPort", "sshUser", "sshPrivateKeyPath", "sshHostKey"];
    for (const k of Object.keys(raw)) {
        if (!known.includes(k)) add(k, "[not shown]", `unknown key; use one of ${known.join(", ")}.`);
    }
    const consulStack = raw.consulStack ?? "";
    if (!STACK_REF.test(consulStack)) {
        add(
            "consulStack",
            consulStack,
            "must name the Consul stack as <organization>/<project>/<stack>, e.g. organization/consul/prod.",
        );
    }
    const app = raw.app ?? "web";
    if (!APP_NAME.test(app)) {
        add(
            "app",
            app,
            "must be the app's Consul service name as listed in the Consul stack's consul:appTokens (lower-case letters, digits, '-').",
        );
    }
    const host = raw.host ?? "";
    if (!isIpAddress(host) && !HOSTNAME.test(host)) {
        add(
            "host",
            host,
            "must be the address (IP or DNS name) of a client host of the Consul stack (one of its consul:clientHosts).",
        );
    }
    const sshPort = Number(raw.sshPort ?? "22");
    if (!Number.isInteger(sshPort) || sshPort < 1 || sshPort > 65535)
        add("sshPort", raw.sshPort, "must be a port, 1 to 65535.");
    const sshUser = raw.sshUser ?? "root";
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(sshUser))
        add("sshUser", sshUser, "must be a POSIX user name (root, or a user with passwordless sudo).");
    const sshPrivateKeyPath = raw.sshPrivateKeyPath ?? "";
    if (sshPrivateKeyPath === "")
        add("sshPrivateKeyPath", "", "is required: the file holding the SSH private key for the host.");
    const sshHostKey = raw.sshHostKey?.trim() || undefined;
    if (sshHostKey !== undefined && !HOST_KEY.test(sshHostKey)) {
        add(
            "sshHostKey",
            sshHostKey,
            "must be the host's key as '<type> AAAA...' (ssh-keyscan, or /etc/ssh/ssh_host_ed25519_key.pub on the host).",
        );
    } else if (sshHostKey === undefined && !isDevelopmentStack(stack)) {
        add(
            "sshHostKey",
            "",
            `is required outside development stacks (stack "${stack}"): the env file holds the app's token, so pin the host's key before it is sent.`,
        );
    }
    if (problems.length > 0) {
        throw new Error(
            `Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}); nothing was changed:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
        );
    }
    return { consulStack, app, host, sshPort, sshUser, sshPrivateKeyPath, sshHostKey };
}
