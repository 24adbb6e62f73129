// The vm and hybrid topologies' settings: the hosts, how they are reached over SSH and trusted, and
// where the Consul release comes from.

import * as pulumi from "@pulumi/pulumi";
import type { Bastion, Host, Topology, VmSettings } from "./types";
import { DEVELOPMENT_STACKS, isDevelopmentStack } from "./stack-kind";
import type { Reader } from "./read";
import { HOSTNAME, isIpAddress } from "./read";
import { readSnapshots } from "./snapshot";
import { parseHost, readSshPrivateKey } from "./ssh";

const SSH_PUBLIC_KEY =
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) AAAA[A-Za-z0-9+/]+={0,3}( \S+)?$/;

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

export function readVm(r: Reader, topology: Topology, context: ReadContext): VmSettings {
    const { problems, key, str, int, bool } = r;
    const hosts = (name: "serverHosts" | "clientHosts"): Host[] => {
        const entries = r.list(name);
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
    // None listed (the engine passes Pulumi.yaml's default, [], when the key is unset).
    if (servers.length === 0 && r.list("serverHosts").length === 0) {
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

    const keyText = readSshPrivateKey(r, topology, context);

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
    const hostKeyEntries = r.list("sshHostKeys");
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

    const deadHosts = r.list("deadHosts");
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
        clientSelfRegister: bool("clientSelfRegister"),
        ...snapshotSettings(readSnapshots(r, topology, context)),
    };
}

/** Only a stack with snapshots on has the key, so the settings of every other stack stay as they were. */
function snapshotSettings(snapshot: VmSettings["snapshot"]): Pick<VmSettings, "snapshot"> {
    return snapshot ? { snapshot } : {};
}
