// Snapshot backups on the VM servers (snapshotInterval set): every server gets the snapshot
// script, a oneshot service and its timer (only the leader's run saves), the rclone config with
// the bucket's credentials and, with ACLs, the snapshot token; the ACL step's sibling creates that
// token. All pure (its ACL step is ./acl-steps.ts). Off, nothing here is used: no file, no command.

import * as pulumi from "@pulumi/pulumi";
import type { Host, SnapshotSettings } from "../config";
import { SnapshotToken } from "../security";
import { NodeFile } from "./bundle";
import { PATHS } from "./paths";
import { snapshotScript } from "./scripts";
import { renderUnit, SystemdUnit } from "./systemd";

/** The rclone remote name in the config file (not a secret, not a host name). */
export const RCLONE_REMOTE = "consul-snapshots";

/** Where a datacenter's snapshots go: `<remote>:<bucket>/<datacenter>`. */
export function snapshotRemote(snapshot: Pick<SnapshotSettings, "s3">, datacenter: string): string {
    return `${RCLONE_REMOTE}:${snapshot.s3.bucket}/${datacenter}`;
}

/** An rclone config file (INI) from typed sections; refuses values that would break a line. */
export function renderRcloneConfig(sections: Readonly<Record<string, Readonly<Record<string, string>>>>): string {
    const out: string[] = [];
    for (const [name, entries] of Object.entries(sections)) {
        if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`rclone: bad remote name ${name}`);
        out.push(`[${name}]`);
        for (const [key, value] of Object.entries(entries)) {
            if (!/^[a-z_]+$/.test(key)) throw new Error(`rclone ${name}: bad key ${key}`);
            if (/[\r\n]/.test(value)) throw new Error(`rclone ${name}.${key}: a value cannot contain a line break`);
            out.push(`${key} = ${value}`);
        }
        out.push("");
    }
    return out.join("\n");
}

/** The S3 remote; the secret key is inside, so the file is root-only (0600) and never on argv. */
export function rcloneConfig(snapshot: Pick<SnapshotSettings, "s3">, secretAccessKey: string): string {
    const { s3 } = snapshot;
    return renderRcloneConfig({
        [RCLONE_REMOTE]: {
            type: "s3",
            provider: "Other",
            env_auth: "false",
            access_key_id: s3.accessKeyId,
            secret_access_key: secretAccessKey,
            region: s3.region,
            endpoint: s3.endpoint,
            // Path-style URLs work with every S3-compatible service (and bucket names with dots).
            force_path_style: "true",
            // The bucket must exist; the credentials need not be allowed to create buckets.
            no_check_bucket: "true",
        },
    });
}

const SERVICE_NAME = PATHS.snapshotService.split("/").pop() as string;

/** consul-snapshot.service: one `consul-snapshot save` run, as root, with little else writable. */
export function snapshotServiceUnit(): SystemdUnit {
    return {
        Unit: {
            Description: "Consul snapshot: save on the Raft leader, copy to the bucket, prune (consul-pulumi)",
            Documentation: "https://developer.hashicorp.com/consul/commands/snapshot",
            Wants: "network-online.target",
            After: "network-online.target consul.service",
            ConditionFileNotEmpty: [PATHS.snapshotBin, PATHS.snapshotRcloneConfig],
        },
        Service: {
            Type: "oneshot",
            ExecStart: `${PATHS.snapshotBin} save`,
            // systemd creates it root-only (0700) before the run; with ProtectSystem=strict it is
            // the one directory the run may write, besides its private /tmp.
            StateDirectory: PATHS.snapshotDir.replace(/^\/var\/lib\//, ""),
            StateDirectoryMode: "0700",
            UMask: "0077",
            TimeoutStartSec: "30min",
            Nice: 10,
            IOSchedulingClass: "idle",
            NoNewPrivileges: true,
            ProtectSystem: "strict",
            ProtectHome: true,
            PrivateTmp: true,
            PrivateDevices: true,
            ProtectKernelTunables: true,
            ProtectKernelModules: true,
            ProtectControlGroups: true,
            RestrictAddressFamilies: "AF_UNIX AF_INET AF_INET6",
            RestrictSUIDSGID: true,
            LockPersonality: true,
        },
        Install: {},
    };
}

/**
 * consul-snapshot.timer: the first run one interval after the timer starts (a deploy or a boot),
 * then one interval after each run began.
 */
export function snapshotTimerUnit(interval: string): SystemdUnit {
    return {
        Unit: { Description: `Consul snapshot every ${interval} (consul-pulumi)` },
        Timer: {
            OnActiveSec: interval,
            OnUnitActiveSec: interval,
            AccuracySec: "1s",
            Unit: SERVICE_NAME,
        },
        Install: { WantedBy: "timers.target" },
    };
}

export interface SnapshotFilesArgs {
    readonly snapshot: SnapshotSettings;
    readonly datacenter: string;
    readonly httpsPort: number;
    readonly waitSeconds: number;
    /** Resolved secrets: the bucket's secret key, and the snapshot token (with ACLs). */
    readonly secretAccessKey: string;
    readonly snapshotToken?: string;
}

/** The files a server gets for snapshots, with owner and mode. Pure. */
export function snapshotFiles(host: Host, args: SnapshotFilesArgs): NodeFile[] {
    const script = snapshotScript({
        nodeName: host.name,
        httpsPort: args.httpsPort,
        aclEnabled: args.snapshotToken !== undefined,
        remote: snapshotRemote(args.snapshot, args.datacenter),
        retain: args.snapshot.retain,
        waitSeconds: args.waitSeconds,
    });
    const root = { owner: "root", group: "root" } as const;
    const files: NodeFile[] = [
        { path: PATHS.snapshotBin, mode: "0700", ...root, content: script },
        {
            path: PATHS.snapshotRcloneConfig,
            mode: "0600",
            ...root,
            content: rcloneConfig(args.snapshot, args.secretAccessKey),
        },
        { path: PATHS.snapshotService, mode: "0644", ...root, content: renderUnit(snapshotServiceUnit()) },
        {
            path: PATHS.snapshotTimer,
            mode: "0644",
            ...root,
            content: renderUnit(snapshotTimerUnit(args.snapshot.interval)),
        },
    ];
    if (args.snapshotToken !== undefined) {
        files.push({ path: PATHS.snapshotTokenFile, mode: "0600", ...root, content: args.snapshotToken + "\n" });
    }
    return files;
}

/** A cluster's snapshot material: the token (with ACLs) and how a server's files get theirs. */
export interface VmSnapshots {
    readonly token?: SnapshotToken;
    /** A server's files plus its snapshot files; secret, as the files are. */
    readonly withFiles: (files: pulumi.Output<NodeFile[]>, host: Host) => pulumi.Output<NodeFile[]>;
}

export function vmSnapshots(
    name: string,
    args: Omit<SnapshotFilesArgs, "secretAccessKey" | "snapshotToken"> & { readonly aclEnabled: boolean },
    parent: pulumi.Resource,
): VmSnapshots {
    const token = args.aclEnabled ? new SnapshotToken(`${name}-snapshot-token`, { parent }) : undefined;
    const secrets = pulumi.secret(pulumi.all([args.snapshot.s3.secretAccessKey, token ? token.token : ""]));
    return {
        token,
        withFiles: (files, host) =>
            pulumi
                .all([files, secrets])
                .apply(([own, [secretAccessKey, snapshotToken]]) => [
                    ...own,
                    ...snapshotFiles(host, { ...args, secretAccessKey, snapshotToken: snapshotToken || undefined }),
                ]),
    };
}
