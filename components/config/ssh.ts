// How a host is named and reached: `<node-name>=<address>[:port]` entries and the SSH private key.

import * as fs from "fs";
import * as net from "net";
import type { Reader } from "./read";
import { DNS_LABEL, expandHome, HOSTNAME } from "./read";
import type { Host, Topology } from "./types";
import type { ReadContext } from "./vm";

/** Parses `<node-name>=<address>[:port]`, with IPv6 addresses in brackets when a port follows. */
export function parseHost(entry: string): Host | string {
    const eq = entry.indexOf("=");
    if (eq < 0) return "must be <node-name>=<address>[:ssh-port], e.g. consul-server-1=10.0.0.11";
    const name = entry.slice(0, eq).trim();
    let rest = entry.slice(eq + 1).trim();
    if (!DNS_LABEL.test(name)) {
        return `node name "${name}" must be a DNS label (lower-case letters, digits and '-')`;
    }
    let sshPort = 22;
    let address: string;
    if (rest.startsWith("[")) {
        const close = rest.indexOf("]");
        if (close < 0) return `"${rest}" opens a bracket for an IPv6 address but never closes it`;
        address = rest.slice(1, close);
        rest = rest.slice(close + 1);
        if (rest !== "" && !rest.startsWith(":")) return `unexpected "${rest}" after the IPv6 address`;
        if (rest !== "") {
            const port = rest.slice(1);
            if (!/^\d+$/.test(port) || +port < 1 || +port > 65535) return `SSH port "${port}" must be 1 to 65535`;
            sshPort = +port;
        }
        if (net.isIPv6(address)) return { name, address, addressIsIp: true, sshPort };
        return `"${address}" is not a valid IPv6 address`;
    }
    if (net.isIPv6(rest)) return { name, address: rest, addressIsIp: true, sshPort };
    const colon = rest.lastIndexOf(":");
    address = rest;
    if (colon >= 0) {
        address = rest.slice(0, colon);
        const port = rest.slice(colon + 1);
        if (!/^\d+$/.test(port) || +port < 1 || +port > 65535) return `SSH port "${port}" must be 1 to 65535`;
        sshPort = +port;
    }
    if (/^[\d.]+$/.test(address)) {
        return net.isIPv4(address)
            ? { name, address, addressIsIp: true, sshPort }
            : `"${address}" is not a valid IPv4 address`;
    }
    if (!HOSTNAME.test(address)) return `"${address}" is neither an IP address nor a valid hostname`;
    return { name, address: address.toLowerCase(), addressIsIp: false, sshPort };
}

/** The SSH private key's text, from sshPrivateKey (a secret) or the file sshPrivateKeyPath names. */
export function readSshPrivateKey(
    r: Reader,
    topology: Topology,
    context: Pick<ReadContext, "preview" | "secretKeys" | "notes">,
): string | undefined {
    const { problems, key, str, raw } = r;
    const keyPath = str("sshPrivateKeyPath");
    const inlineKey = raw.sshPrivateKey;
    let keyText: string | undefined;
    if (keyPath && inlineKey) {
        problems.add(
            key("sshPrivateKeyPath"),
            looksLikePrivateKey(keyPath) ? "[a private key, not shown]" : keyPath,
            `set either it or ${key("sshPrivateKey")}, not both.`,
        );
    } else if (inlineKey) {
        keyText = inlineKey;
        if (context.secretKeys && !context.secretKeys.has("sshPrivateKey")) {
            problems.add(
                key("sshPrivateKey"),
                "[not shown]",
                "is stored in plain text in the stack file, where anyone who can read the repository has it; a private key must be a secret: `pulumi config rm sshPrivateKey`, then `pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`.",
            );
        } else if (!looksLikePrivateKey(inlineKey)) {
            problems.add(
                key("sshPrivateKey"),
                "[secret]",
                "is not a PEM/OpenSSH private key; set it with `pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`.",
            );
        }
    } else if (keyPath) {
        const file = expandHome(keyPath);
        try {
            // A regular file of key size only: /dev/zero or a FIFO would never end.
            const stat = fs.statSync(file);
            keyText = stat.isFile() && stat.size <= 64 * 1024 ? fs.readFileSync(file, "utf8") : "";
            if (!looksLikePrivateKey(keyText)) {
                problems.add(
                    key("sshPrivateKeyPath"),
                    keyPath,
                    "the file is not a PEM/OpenSSH private key (did you give the .pub file?).",
                );
            }
        } catch (err) {
            const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
            if (looksLikePrivateKey(keyPath)) {
                problems.add(
                    key("sshPrivateKeyPath"),
                    "[a private key, not shown]",
                    "must be the path of the key file, not the key; to give the key itself, `pulumi config rm sshPrivateKeyPath` and `pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`.",
                );
            } else if (missing && context.preview) {
                context.notes.push(
                    `${key("sshPrivateKeyPath")} = ${JSON.stringify(keyPath)}: no such file here. This preview goes on without it (a preview connects to no host); pulumi up will refuse until the key is there.`,
                );
            } else {
                problems.add(
                    key("sshPrivateKeyPath"),
                    keyPath,
                    `${missing ? "no such file" : "cannot be read"}; create the key or point the path at an existing private key.`,
                );
            }
        }
    } else {
        problems.add(
            key("sshPrivateKeyPath"),
            "",
            `the ${topology} topology needs an SSH key: set sshPrivateKeyPath to a key file, or sshPrivateKey with pulumi config set --secret.`,
        );
    }
    return keyText;
}

function looksLikePrivateKey(text: string): boolean {
    return /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/.test(text) && /-----END ([A-Z]+ )?PRIVATE KEY-----/.test(text);
}
