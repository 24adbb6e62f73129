// systemd units rendered from typed objects: no string templates with holes. `renderUnit` refuses
// values that would break the line-oriented format instead of escaping them silently.

/** One directive value: arrays render as one line per item (ExecStartPre, Condition*...). */
export type UnitValue = string | number | boolean | readonly string[];

export type UnitSection = Readonly<Record<string, UnitValue | undefined>>;

/** A service has [Service], a timer [Timer]; sections absent are not rendered. */
export interface SystemdUnit {
    readonly Unit: UnitSection;
    readonly Service?: UnitSection;
    readonly Timer?: UnitSection;
    readonly Install: UnitSection;
}

function renderValue(section: string, key: string, value: string | number | boolean): string {
    const text = typeof value === "boolean" ? (value ? "yes" : "no") : String(value);
    if (/[\r\n]/.test(text)) throw new Error(`systemd ${section}.${key}: a value cannot contain a line break`);
    if (text.endsWith("\\")) throw new Error(`systemd ${section}.${key}: a value cannot end in a backslash`);
    return text;
}

/** Renders sections in [Unit], [Service], [Timer], [Install] order, directives in the order given. */
export function renderUnit(unit: SystemdUnit): string {
    const order = ["Unit", "Service", "Timer", "Install"] as const;
    return renderSections(order.filter((name) => unit[name] !== undefined).map((name) => [name, unit[name] ?? {}]));
}

/** Any systemd-style INI file (a unit, a resolved.conf drop-in): sections and directives in the order given. */
export function renderSections(sections: ReadonlyArray<readonly [string, UnitSection]>): string {
    const out: string[] = [];
    for (const [section, directives] of sections) {
        if (!/^[A-Z][A-Za-z]*$/.test(section)) throw new Error(`systemd: bad section name ${section}`);
        out.push(`[${section}]`);
        for (const [key, value] of Object.entries(directives)) {
            if (!/^[A-Za-z][A-Za-z0-9]*$/.test(key)) throw new Error(`systemd ${section}: bad directive name ${key}`);
            if (value === undefined) continue;
            const values = Array.isArray(value) ? (value as readonly string[]) : [value as string | number | boolean];
            for (const v of values) out.push(`${key}=${renderValue(section, key, v)}`);
        }
        out.push("");
    }
    return out.join("\n");
}

export interface ConsulUnitOptions {
    readonly role: "server" | "client";
    readonly nodeName: string;
    readonly binary: string;
    /** The config files the agent loads, in order; the unit starts only if all are non-empty. */
    readonly configFiles: readonly string[];
    readonly dataDir: string;
    /**
     * True when the agent has another agent to join. Consul sends READY=1 only after a LAN join,
     * so a lone server must not be Type=notify or it hangs in "activating" (it has no one to join).
     */
    readonly hasPeerToJoin: boolean;
    /** Lowest port the agent listens on; below 1024 it needs CAP_NET_BIND_SERVICE. */
    readonly lowestPort: number;
}

export const CONSUL_USER = "consul";

/** The consul.service unit of one agent (seed 002's unit, hardened). */
export function consulUnit(options: ConsulUnitOptions): SystemdUnit {
    if (options.configFiles.length === 0) throw new Error("the agent needs at least one config file");
    const privileged = options.lowestPort < 1024;
    const configArgs = options.configFiles.map((f) => `-config-file=${f}`).join(" ");
    return {
        Unit: {
            Description: `Consul ${options.role} agent ${options.nodeName}`,
            Documentation: "https://developer.hashicorp.com/consul/docs",
            Wants: "network-online.target",
            After: "network-online.target",
            // The files this agent really loads: a condition on the package's consul.hcl would keep an
            // agent configured under other names from ever starting.
            ConditionFileNotEmpty: [...options.configFiles],
        },
        Service: {
            Type: options.hasPeerToJoin ? "notify" : "exec",
            User: CONSUL_USER,
            Group: CONSUL_USER,
            ExecStartPre: [`${options.binary} validate ${options.configFiles.join(" ")}`],
            ExecStart: `${options.binary} agent ${configArgs}`,
            ExecReload: "/bin/kill --signal HUP $MAINPID",
            // Consul handles SIGTERM itself (leave on clients, stay a Raft peer on servers).
            KillMode: "process",
            KillSignal: "SIGTERM",
            Restart: "on-failure",
            RestartSec: "5s",
            // A notify agent is READY once it joined; give peers that start later time to come up.
            TimeoutStartSec: options.hasPeerToJoin ? "5min" : "90s",
            LimitNOFILE: 65536,
            // Hardening: nothing but the data dir is writable, no privileges beyond the port.
            NoNewPrivileges: true,
            ProtectSystem: "strict",
            ReadWritePaths: options.dataDir,
            ProtectHome: true,
            PrivateTmp: true,
            PrivateDevices: true,
            ProtectKernelTunables: true,
            ProtectKernelModules: true,
            ProtectControlGroups: true,
            RestrictAddressFamilies: "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            RestrictSUIDSGID: true,
            RestrictRealtime: true,
            LockPersonality: true,
            SystemCallArchitectures: "native",
            CapabilityBoundingSet: privileged ? "CAP_NET_BIND_SERVICE" : "",
            AmbientCapabilities: privileged ? "CAP_NET_BIND_SERVICE" : "",
            UMask: "0077",
        },
        Install: { WantedBy: "multi-user.target" },
    };
}
