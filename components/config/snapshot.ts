// Snapshot backups of the VM servers: how often, how many, and the S3-compatible bucket they are
// copied to. Off unless snapshotInterval is set; then every S3 key but the region is required.

import * as pulumi from "@pulumi/pulumi";
import type { Reader } from "./read";
import { HOSTNAME, isIpAddress } from "./read";
import type { ConfigKey } from "./schema";
import type { SnapshotSettings, Topology } from "./types";
import type { ReadContext } from "./vm";

/**
 * The keys that only mean something with snapshots on (snapshotS3AllowHttp aside: a permission
 * left set does no harm).
 */
const SNAPSHOT_KEYS = [
    "snapshotRetain",
    "snapshotS3Endpoint",
    "snapshotS3Bucket",
    "snapshotS3Region",
    "snapshotS3AccessKeyId",
    "snapshotS3SecretAccessKey",
] as const satisfies readonly ConfigKey[];

/** systemd's time-span units (systemd.time(7)), in seconds. */
const SPAN_UNITS: Readonly<Record<string, number>> = {
    s: 1,
    sec: 1,
    second: 1,
    seconds: 1,
    m: 60,
    min: 60,
    minute: 60,
    minutes: 60,
    h: 3600,
    hr: 3600,
    hour: 3600,
    hours: 3600,
    d: 86400,
    day: 86400,
    days: 86400,
    w: 604800,
    week: 604800,
    weeks: 604800,
};

/**
 * Seconds in a systemd time span made of whole `<number><unit>` parts ("1h 30min", "90s"), or
 * undefined if it is not one. A bare number is refused: systemd reads it as seconds, which an
 * operator writing "60" rarely means.
 */
export function timeSpanSeconds(text: string): number | undefined {
    const parts = text
        .trim()
        .split(/\s+/)
        .join("")
        .match(/\d+[a-z]+/g);
    if (!parts || parts.join("") !== text.replace(/\s+/g, "")) return undefined;
    let total = 0;
    for (const part of parts) {
        const [, n, unit] = /^(\d+)([a-z]+)$/.exec(part) as RegExpExecArray;
        if (!(unit in SPAN_UNITS)) return undefined;
        total += Number(n) * SPAN_UNITS[unit];
    }
    return total;
}

/** S3 bucket naming rules: 3-63 lower-case letters, digits, '.' and '-', starting and ending alphanumeric. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const REGION = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** What AWS and S3-compatible services issue as access key IDs. */
const ACCESS_KEY_ID = /^[A-Za-z0-9+/=_-]{3,128}$/;

/** The snapshot settings, or undefined when snapshots are off (snapshotInterval empty). */
export function readSnapshots(
    r: Reader,
    topology: Topology,
    context: Pick<ReadContext, "secretKeys">,
): SnapshotSettings | undefined {
    const { problems, key, str, int, bool, raw } = r;
    const interval = str("snapshotInterval").trim();
    if (interval === "") {
        const stray = SNAPSHOT_KEYS.filter((name) => raw[name] !== undefined && raw[name] !== "");
        if (stray.length > 0) {
            problems.add(
                key("snapshotInterval"),
                "",
                `is empty, so snapshots are off, but ${stray.map(key).join(", ")} ${stray.length === 1 ? "is" : "are"} set; set snapshotInterval (e.g. 1h) to turn snapshots on, or remove ${stray.length === 1 ? "it" : "them"}.`,
            );
        }
        return undefined;
    }
    if (topology === "kubernetes") {
        problems.add(
            key("snapshotInterval"),
            interval,
            "snapshots are only taken on VM servers (topology vm or hybrid) so far; remove it on kubernetes.",
        );
        return undefined;
    }
    const seconds = timeSpanSeconds(interval);
    if (seconds === undefined) {
        problems.add(
            key("snapshotInterval"),
            interval,
            "must be a systemd time span of numbers with units, such as 1h, 30min or 1d 12h (units: s, min, h, d, w).",
        );
    } else if (seconds < 60) {
        problems.add(
            key("snapshotInterval"),
            interval,
            "is under a minute; a snapshot every few seconds would load the leader and fill the bucket; use 1min or more.",
        );
    }
    const retain = int("snapshotRetain");
    if (retain !== undefined && (retain < 1 || retain > 10000)) {
        problems.add(key("snapshotRetain"), retain, "must be from 1 to 10000 (how many snapshots to keep).");
    }

    const endpoint = str("snapshotS3Endpoint");
    let url: URL | undefined;
    try {
        url = new URL(endpoint);
    } catch {
        url = undefined;
    }
    const hostOk =
        url !== undefined && (isIpAddress(url.hostname.replace(/^\[|\]$/g, "")) || HOSTNAME.test(url.hostname));
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || !hostOk || url.search || url.hash) {
        problems.add(
            key("snapshotS3Endpoint"),
            endpoint,
            "must be the https URL of an S3-compatible service, such as https://s3.eu-west-1.amazonaws.com.",
        );
    } else if (url.protocol === "http:" && !bool("snapshotS3AllowHttp")) {
        problems.add(
            key("snapshotS3Endpoint"),
            endpoint,
            `is plain http: a snapshot holds every ACL token and KV value, and anyone on the path would read it and the credentials. Use https, or set ${key("snapshotS3AllowHttp")} to true for a service on a network you trust.`,
        );
    }
    const bucket = str("snapshotS3Bucket");
    if (!BUCKET.test(bucket) || bucket.includes("..")) {
        problems.add(
            key("snapshotS3Bucket"),
            bucket,
            "must be an S3 bucket name: 3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit.",
        );
    }
    const region = str("snapshotS3Region");
    if (!REGION.test(region)) {
        problems.add(key("snapshotS3Region"), region, "must be a region name such as us-east-1.");
    }
    const accessKeyId = str("snapshotS3AccessKeyId");
    if (!ACCESS_KEY_ID.test(accessKeyId)) {
        problems.add(
            key("snapshotS3AccessKeyId"),
            accessKeyId,
            "must be the access key ID of credentials that may write to the bucket (letters and digits, e.g. AKIA...).",
        );
    }
    const secretAccessKey = raw.snapshotS3SecretAccessKey ?? "";
    if (secretAccessKey === "") {
        problems.add(
            key("snapshotS3SecretAccessKey"),
            "",
            "is required with snapshots on; set it with `pulumi config set --secret snapshotS3SecretAccessKey` (it prompts for the value).",
        );
    } else if (context.secretKeys && !context.secretKeys.has("snapshotS3SecretAccessKey")) {
        problems.add(
            key("snapshotS3SecretAccessKey"),
            "[not shown]",
            "is stored in plain text in the stack file, where anyone who can read the repository has it; it must be a secret: `pulumi config rm snapshotS3SecretAccessKey`, then `pulumi config set --secret snapshotS3SecretAccessKey`, and rotate the key.",
        );
    } else if (/[\s\0]/.test(secretAccessKey)) {
        problems.add(
            key("snapshotS3SecretAccessKey"),
            "[secret]",
            "holds a space or line break; paste the secret access key alone with `pulumi config set --secret snapshotS3SecretAccessKey`.",
        );
    }
    return {
        interval,
        retain,
        s3: {
            endpoint: endpoint.replace(/\/+$/, ""),
            bucket,
            region,
            accessKeyId,
            secretAccessKey: pulumi.secret(secretAccessKey),
        },
    };
}
