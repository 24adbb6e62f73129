// The settings every topology shares: names, the Consul release, the server count, ports,
// logging, the gossip key keeper and telemetry.

import type { Reader } from "./read";
import { DNS_LABEL } from "./read";
import { DEFAULT_CONSUL_VERSION } from "./schema";
import type { Ports, Settings } from "./types";

const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+ent)?$/;
const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/** The oldest Consul release the generated config works with: `tls {}` arrived in 1.12. */
export const MIN_CONSUL_VERSION = [1, 12, 0] as const;

export type CommonSettings = Pick<
    Settings,
    | "datacenter"
    | "domain"
    | "consulVersion"
    | "serverCount"
    | "logLevel"
    | "raftMultiplier"
    | "ports"
    | "gossipKeyKeeper"
    | "telemetry"
>;

export function readCommon(r: Reader): CommonSettings {
    const { problems, key } = r;
    const dnsLabel = (name: "datacenter" | "domain", what: string) => {
        const value = r.str(name);
        if (value !== undefined && !DNS_LABEL.test(value)) {
            problems.add(
                key(name),
                value,
                `${what} must be a DNS label: lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit.`,
            );
        }
        return value;
    };

    const datacenter = dnsLabel("datacenter", "the datacenter");
    const domain = dnsLabel("domain", "the domain");

    const consulVersion = r.str("consulVersion");
    if (consulVersion !== undefined && !SEMVER.test(consulVersion)) {
        problems.add(
            key("consulVersion"),
            consulVersion,
            `must be a Consul release version such as ${DEFAULT_CONSUL_VERSION} (no leading v).`,
        );
    } else if (consulVersion !== undefined && olderThan(consulVersion, MIN_CONSUL_VERSION)) {
        problems.add(
            key("consulVersion"),
            consulVersion,
            `is older than ${MIN_CONSUL_VERSION.join(".")}, the first release with the tls {} config stanza this program writes; use ${DEFAULT_CONSUL_VERSION}.`,
        );
    }

    const serverCount = r.int("serverCount");
    if (serverCount !== undefined && (serverCount < 1 || serverCount > 7 || serverCount % 2 === 0)) {
        problems.add(
            key("serverCount"),
            serverCount,
            "must be odd and between 1 and 7 (an even count adds no failure tolerance and risks split votes); use 3 or 5.",
        );
    }

    const logLevel = r.oneOf("logLevel", ["trace", "debug", "info", "warn", "error"] as const);

    const raftMultiplier = r.int("raftMultiplier");
    if (raftMultiplier !== undefined && (raftMultiplier < 1 || raftMultiplier > 10)) {
        problems.add(key("raftMultiplier"), raftMultiplier, "must be between 1 and 10; use 1 for production.");
    }
    const ports = readPorts(r);

    const gossipKeyKeeper = r.str("gossipKeyKeeper");
    if (gossipKeyKeeper !== undefined && gossipKeyKeeper.trim() === "") {
        problems.add(
            key("gossipKeyKeeper"),
            gossipKeyKeeper,
            "must not be empty; keep the previous value, or any new value to rotate.",
        );
    }

    const telemetryRetention = r.str("telemetryRetention");
    if (
        telemetryRetention !== undefined &&
        (!GO_DURATION.test(telemetryRetention) || /^0+(\D|$)/.test(telemetryRetention))
    ) {
        problems.add(
            key("telemetryRetention"),
            telemetryRetention,
            "must be a positive Go duration such as 60s or 5m; Prometheus needs metrics kept longer than its scrape interval.",
        );
    }

    return {
        datacenter,
        domain,
        consulVersion,
        serverCount,
        logLevel,
        raftMultiplier,
        ports,
        gossipKeyKeeper,
        telemetry: { enabled: r.bool("telemetryEnabled"), retention: telemetryRetention },
    };
}

function readPorts(r: Reader): Ports {
    const names = {
        https: "httpsPort",
        http: "httpPort",
        grpcTls: "grpcTlsPort",
        dns: "dnsPort",
        serverRpc: "serverRpcPort",
        serfLan: "serfLanPort",
        serfWan: "serfWanPort",
    } as const;
    const canDisable = new Set<string>(["httpPort", "dnsPort"]);
    const seen = new Map<number, string>();
    const ports = {} as Record<keyof Ports, number>;
    for (const [field, name] of Object.entries(names) as [keyof Ports, (typeof names)[keyof Ports]][]) {
        const port = r.int(name);
        ports[field] = port;
        if (port === undefined) continue;
        if (port === -1 && canDisable.has(name)) continue;
        if (port < 1 || port > 65535) {
            r.problems.add(
                r.key(name),
                port,
                `must be a TCP port between 1 and 65535${canDisable.has(name) ? ", or -1 to turn it off" : ""}.`,
            );
            continue;
        }
        const other = seen.get(port);
        if (other) {
            r.problems.add(
                r.key(name),
                port,
                `is already used by ${r.key(other)}; every Consul port must be different.`,
            );
        }
        seen.set(port, name);
    }
    return ports;
}

function olderThan(version: string, minimum: readonly number[]): boolean {
    const parts = version.split(/[.-]/).slice(0, 3).map(Number);
    for (let i = 0; i < minimum.length; i++) {
        if (parts[i] !== minimum[i]) return parts[i] < minimum[i];
    }
    return false;
}
