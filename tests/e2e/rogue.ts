// Rogue Consul agents for the replay suite's scenario 8 (./cluster.e2e.ts): agents started by hand on
// a host outside the stack, with whatever certificates, keys and config a scenario gives them, to
// show that the cluster refuses them and why.

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { api, ApiOptions, Hosts } from "./infra";

/** Certificate files (paths on the rogue host, or PEM contents). */
export interface TlsFiles {
    readonly ca: string;
    readonly cert: string;
    readonly key: string;
}

/** Rogue agents on one host; each runs as the transient unit rogue-<name>, config in /etc/rogue-<name>. */
export class RogueHost {
    constructor(
        private readonly hosts: Hosts,
        /** The rogue host's number (1-based). */
        private readonly host: number,
        /** Where the Consul release is downloaded from (the suite's mirror) and which version. */
        private readonly release: { readonly mirrorUrl: string; readonly consulVersion: string },
        /** The cluster's servers: what rogues join, and where they are force-left afterwards. */
        private readonly cluster: { readonly serverAddrs: readonly string[]; readonly api: ApiOptions },
    ) {}

    /** Starts agent `name` with these files in its config directory and this agent config. */
    async start(name: string, files: Record<string, string>, agentConfig: Record<string, unknown>): Promise<void> {
        const address = this.hosts.hosts[this.host - 1].address;
        const { mirrorUrl, consulVersion } = this.release;
        const dir = `/etc/rogue-${name}`;
        const writes = Object.entries(files)
            .map(([f, content]) => `printf '%s' '${Buffer.from(content).toString("base64")}' | base64 -d > ${dir}/${f}`)
            .join("\n");
        const cfg = Buffer.from(
            JSON.stringify({
                node_name: name,
                datacenter: "dc1",
                data_dir: `/var/lib/rogue-${name}`,
                bind_addr: address,
                advertise_addr: address,
                client_addr: "127.0.0.1",
                retry_join: this.cluster.serverAddrs,
                retry_interval: "2s",
                ports: { http: -1, https: 8501, grpc: -1, grpc_tls: -1, dns: -1 },
                log_level: "DEBUG",
                ...agentConfig,
            }),
        ).toString("base64");
        await this.hosts.run(
            this.host,
            [
                "set -e",
                `test -x /usr/local/bin/consul || { cd /tmp && curl -fsSO ${mirrorUrl}/consul/${consulVersion}/consul_${consulVersion}_linux_amd64.zip && unzip -o -q consul_*.zip -d /usr/local/bin; }`,
                `mkdir -p ${dir} /var/lib/rogue-${name}`,
                writes,
                `printf '%s' '${cfg}' | base64 -d > ${dir}/config.json`,
                `systemd-run --unit=rogue-${name} --quiet /usr/local/bin/consul agent -config-dir=${dir}`,
            ].join("\n"),
        );
    }

    /**
     * Starts `name` as a server with these PEMs as its TLS files (verifying both ways and the server
     * name) and this gossip key.
     */
    async startServer(name: string, pems: TlsFiles, gossipKey: string): Promise<void> {
        const dir = `/etc/rogue-${name}`;
        await this.start(
            name,
            {
                "ca.pem": pems.ca,
                "cert.pem": pems.cert,
                "key.pem": pems.key,
                "enc.json": JSON.stringify({ encrypt: gossipKey }),
            },
            {
                server: true,
                tls: {
                    defaults: {
                        ca_file: `${dir}/ca.pem`,
                        cert_file: `${dir}/cert.pem`,
                        key_file: `${dir}/key.pem`,
                        verify_incoming: true,
                        verify_outgoing: true,
                    },
                    internal_rpc: { verify_server_hostname: true },
                },
            },
        );
    }

    /** What the rogue's local HTTPS API says the leader is (certificate not checked). */
    async leaderView(): Promise<string> {
        return (await this.hosts.exec(this.host, "curl -sk https://127.0.0.1:8501/v1/status/leader")).stdout;
    }

    /** Stops agent `name` and force-leaves whatever it left in the member list; returns its log. */
    async stop(name: string): Promise<string> {
        const logs = await this.hosts.exec(
            this.host,
            `journalctl -u rogue-${name} --no-pager -n 200; systemctl stop rogue-${name}`,
        );
        await api(this.cluster.serverAddrs[0], `/v1/agent/force-leave/${name}?prune=1`, {
            ...this.cluster.api,
            method: "PUT",
        }).catch(() => undefined);
        return logs.stdout;
    }
}

/** The first line matching `re` (for the figures: the rejection as it was logged). */
export function firstLine(text: string, re: RegExp): string {
    return (
        text
            .split("\n")
            .find((l) => re.test(l))
            ?.trim() ?? "(none)"
    );
}

/** Another CA (openssl, P-256, 2 days) and a server.dc1.consul certificate it signed, as PEM. */
export function foreignCa(): TlsFiles {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foreign-ca-"));
    try {
        const run = (args: string[]) => {
            const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
            if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
        };
        const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        run(["req", "-x509", ...ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Evil CA"]);
        run(["req", ...ec, "-keyout", "key.pem", "-out", "csr.pem", "-subj", "/CN=server.dc1.consul"]);
        fs.writeFileSync(
            path.join(dir, "ext"),
            "subjectAltName=DNS:server.dc1.consul,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        );
        run(
            ["x509", "-req", "-in", "csr.pem", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial"].concat([
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-extfile",
                "ext",
            ]),
        );
        const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
        return { ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem") };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
