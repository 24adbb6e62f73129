// The vm and hybrid topologies' settings: the hosts, how they are reached over SSH and trusted, and
// where the Consul release comes from.

import * as fs from "fs";
import * as net from "net";
import * as pulumi from "@pulumi/pulumi";
import type { Host, Topology, VmSettings, Bastion } from "./settings";
import { ConfigKey } from "./schema";
import { DEVELOPMENT_STACKS, isDevelopmentStack } from "./stack-kind";
import { DNS_LABEL, expandHome, HOSTNAME, isIpAddress, Problems, readTyped } from "./read";

const SSH_PUBLIC_KEY =
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) AAAA[A-Za-z0-9+/]+={0,3}( \S+)?$/;

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

/** What the reader needs to know about the run, beyond the config values. */
export interface ReadContext {
    readonly stack: string;
    /** `pulumi preview`: nothing connects to a host, so a missing SSH key file is only a note. */
    readonly preview: boolean;
    /** Keys (without the project prefix) set with --secret; undefined when the caller cannot tell. */
    readonly secretKeys?: ReadonlySet<string>;
    /** Where notes for the operator go (a preview without the SSH key, say). */
    readonly notes: string[];
}

export function readVm(
    str: (k: ConfigKey) => string,
    int: (k: ConfigKey) => number,
    bool: (k: ConfigKey) => boolean,
    raw: Record<string, string>,
    problems: Problems,
    key: (k: string) => string,
    topology: Topology,
    context: ReadContext,
): VmSettings {
    const hosts = (name: "serverHosts" | "clientHosts"): Host[] => {
        const entries = (readTyped(name, raw[name], new Problems(), "") as string[] | undefined) ?? [];
        const out: Host[] = [];
        for (const entry of entries) {
            const parsed = parseHost(entry);
            if (typeof parsed === "string") problems.add(key(name), entry, `${parsed}.`);
            else out.push(parsed);
        }
        return out;
    };
    const servers = hosts("serverHosts");
    const clients = hosts("clientHosts");
    if (servers.length === 0 && raw.serverHosts === undefined) {
        problems.add(
            key("serverHosts"),
            [],
            `the ${topology} topology needs server hosts; list them as <node-name>=<address>, e.g. [consul-server-1=10.0.0.11, ...].`,
        );
    } else if (servers.length > 0 && (servers.length % 2 === 0 || servers.length > 7)) {
        problems.add(
            key("serverHosts"),
            servers.map((h) => h.name),
            `lists ${servers.length} servers; a Consul cluster needs an odd number from 1 to 7 to keep a quorum, so add or remove one.`,
        );
    } else if (servers.length === 0) {
        problems.add(key("serverHosts"), [], `the ${topology} topology needs at least one server host.`);
    }
    const names = new Map<string, string>();
    const addresses = new Map<string, string>();
    for (const host of [...servers, ...clients]) {
        const listKey = servers.includes(host) ? "serverHosts" : "clientHosts";
        if (names.has(host.name)) {
            problems.add(
                key(listKey),
                host.name,
                `node name is used twice (also in ${key(names.get(host.name) as string)}); Consul node names must be unique.`,
            );
        }
        names.set(host.name, listKey);
        const where = `${host.address}:${host.sshPort}`;
        if (addresses.has(where)) {
            problems.add(
                key(listKey),
                host.address,
                `address is used by two hosts (${addresses.get(where)} and ${host.name}); two agents on one address conflict, give each host its own.`,
            );
        }
        addresses.set(where, host.name);
    }

    const sshUser = str("sshUser");
    if (sshUser !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(sshUser)) {
        problems.add(key("sshUser"), sshUser, "must be a POSIX user name (lower-case letters, digits, '_' and '-').");
    }

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

    let bastion: Bastion | undefined;
    const bastionText = str("sshBastion");
    if (bastionText) {
        const match = /^(?:([a-z_][a-z0-9_-]*)@)?([^@:[\]]+|\[[0-9a-fA-F:]+\])(?::(\d+))?$/.exec(bastionText);
        const host = match?.[2].replace(/^\[|\]$/g, "");
        const port = match?.[3] ? +match[3] : 22;
        if (!match || !host || (!isIpAddress(host) && !HOSTNAME.test(host)) || port < 1 || port > 65535) {
            problems.add(
                key("sshBastion"),
                bastionText,
                "must be [user@]host[:port] with a valid hostname or IP, e.g. ops@bastion.example.com:22.",
            );
        } else {
            bastion = { host, port, user: match[1] ?? sshUser };
        }
    }

    const releaseMirrorUrl = str("releaseMirrorUrl");
    let mirrorOk = false;
    try {
        const url = new URL(releaseMirrorUrl);
        mirrorOk = url.protocol === "https:" || url.protocol === "http:";
    } catch {
        mirrorOk = false;
    }
    if (!mirrorOk) {
        problems.add(
            key("releaseMirrorUrl"),
            releaseMirrorUrl,
            "must be an https URL such as https://releases.hashicorp.com.",
        );
    } else if (new URL(releaseMirrorUrl).protocol === "http:" && !bool("releaseMirrorAllowHttp")) {
        problems.add(
            key("releaseMirrorUrl"),
            releaseMirrorUrl,
            `is plain http: anyone on the path sees and can stall what the hosts fetch (a stale signed release passes the signature check). Use https, or set ${key("releaseMirrorAllowHttp")} to true for a mirror on a network you trust; the release signature is checked either way.`,
        );
    }
    const installMode = str("installMode");
    if (installMode !== "download" && installMode !== "preinstalled") {
        problems.add(key("installMode"), installMode, "must be download or preinstalled.");
    }

    // No prototype: a node may be named "constructor".
    const hostKeys: Record<string, string> = Object.create(null) as Record<string, string>;
    const hostKeyEntries =
        (readTyped("sshHostKeys", raw.sshHostKeys, new Problems(), "") as string[] | undefined) ?? [];
    for (const entry of hostKeyEntries) {
        const eq = entry.indexOf("=");
        const nodeName = eq < 0 ? "" : entry.slice(0, eq).trim();
        const keyText = eq < 0 ? "" : entry.slice(eq + 1).trim();
        if (!names.has(nodeName)) {
            problems.add(
                key("sshHostKeys"),
                entry,
                "must be <node-name>=<key-type> <base64> for a node listed in serverHosts or clientHosts.",
            );
        } else if (!SSH_PUBLIC_KEY.test(keyText)) {
            problems.add(
                key("sshHostKeys"),
                entry,
                "the key must look like 'ssh-ed25519 AAAA...' (from ssh-keyscan or /etc/ssh/ssh_host_*_key.pub on the host).",
            );
        } else if (hostKeys[nodeName] !== undefined) {
            problems.add(key("sshHostKeys"), entry, `pins a second key for ${nodeName}; give one key per node.`);
        } else {
            hostKeys[nodeName] = keyText.split(/\s+/).slice(0, 2).join(" ");
        }
    }

    const deadHosts = (readTyped("deadHosts", raw.deadHosts, new Problems(), "") as string[] | undefined) ?? [];
    for (const name of deadHosts) {
        if (!names.has(name)) {
            problems.add(
                key("deadHosts"),
                name,
                "must name a host that is still listed in serverHosts or clientHosts (its last deploy is what is pruned); a host never deployed can just be dropped from the lists.",
            );
        }
    }
    const unpinned = [...servers, ...clients].filter(
        (h) => hostKeys[h.name] === undefined && !deadHosts.includes(h.name),
    );
    if (unpinned.length > 0 && !isDevelopmentStack(context.stack)) {
        const scan = (h: Host) => `ssh-keyscan -t ed25519 ${h.sshPort === 22 ? "" : `-p ${h.sshPort} `}${h.address}`;
        problems.add(
            key("sshHostKeys"),
            unpinned.map((h) => h.name),
            `no pinned SSH host key for these hosts. Stack "${context.stack}" is not a development stack (those are named ${DEVELOPMENT_STACKS}), so each host's key must be pinned before the gossip key, TLS keys and tokens are sent to it. Print each key (${unpinned.map(scan).join("; ")}), check it against /etc/ssh/ssh_host_ed25519_key.pub on the host's console, and list it as "<node-name>=ssh-ed25519 AAAA..." in sshHostKeys.`,
        );
    }
    const liveServers = servers.filter((h) => !deadHosts.includes(h.name));
    if (servers.length > 0 && liveServers.length === 0) {
        problems.add(
            key("deadHosts"),
            deadHosts,
            "lists every server; at least one live server must remain to prune the others from (with none, restore from a snapshot).",
        );
    }

    const clientBatchSize = int("clientBatchSize");
    if (clientBatchSize !== undefined && (clientBatchSize < 1 || clientBatchSize > 100)) {
        problems.add(key("clientBatchSize"), clientBatchSize, "must be between 1 and 100.");
    }

    return {
        servers,
        clients,
        sshUser,
        sshPrivateKey: pulumi.secret(keyText ?? ""),
        bastion,
        installMode: installMode as VmSettings["installMode"],
        releaseMirrorUrl: releaseMirrorUrl.replace(/\/+$/, ""),
        clientBatchSize,
        hostKeys: Object.keys(hostKeys).length > 0 ? hostKeys : undefined,
        deadHosts: [...new Set(deadHosts)],
    };
}

function looksLikePrivateKey(text: string): boolean {
    return /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/.test(text) && /-----END ([A-Z]+ )?PRIVATE KEY-----/.test(text);
}
