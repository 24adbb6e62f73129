// Releases the suites serve from their mirror besides the one they built: a broken one, whose
// binary reports its version and validates configs but cannot start an agent (a failed upgrade),
// and tampered ones, which a host must refuse before it installs anything.

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { signWithTestKey } from "./release-signing";

/**
 * The release before the default one (components/config/schema.ts): where the upgrade scenarios start,
 * on VMs and on Kubernetes. scripts/prebuild.sh reads it from this line to build it ahead of them.
 */
export const PREVIOUS_VERSION = "1.16.2";

export const BROKEN_VERSION = "1.16.9";

/** A mirror directory with consul_<BROKEN_VERSION>_linux_amd64.zip and its SHA256SUMS. */
export function brokenRelease(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-broken-"));
    const script = [
        "#!/bin/sh",
        "# A Consul build that cannot start (for the failed-upgrade scenarios).",
        'case "$1" in',
        `    version) echo "Consul v${BROKEN_VERSION}"; exit 0 ;;`,
        '    validate) if [ -x /usr/local/bin/consul.previous ]; then exec /usr/local/bin/consul.previous "$@"; fi',
        '        exec /usr/local/bin/consul "$@" ;;',
        '    *) echo "this consul build cannot start" >&2; exit 1 ;;',
        "esac",
        "",
    ].join("\n");
    fs.writeFileSync(path.join(dir, "consul"), script, { mode: 0o755 });
    const zip = `consul_${BROKEN_VERSION}_linux_amd64.zip`;
    for (const [cmd, args] of [
        ["zip", ["-q", "-X", "-j", zip, "consul"]],
        ["sh", ["-c", `sha256sum ${zip} > consul_${BROKEN_VERSION}_SHA256SUMS`]],
    ] as const) {
        const r = spawnSync(cmd, [...args], { cwd: dir, encoding: "utf8" });
        if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
    }
    return dir;
}

export const TAMPERED_VERSION = "1.16.8";

/** A zip holding a `consul` that reports TAMPERED_VERSION; `marker` tells two builds apart. */
function fakeZip(dir: string, marker: string): string {
    fs.writeFileSync(
        path.join(dir, "consul"),
        `#!/bin/sh\n# ${marker}\n[ "$1" = version ] && echo "Consul v${TAMPERED_VERSION}"\n`,
        { mode: 0o755 },
    );
    const zip = `consul_${TAMPERED_VERSION}_linux_amd64.zip`;
    const r = spawnSync("zip", ["-q", "-X", "-j", zip, "consul"], { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`zip: ${r.stderr}`);
    return path.join(dir, zip);
}

const sha256Line = (zip: string) =>
    `${spawnSync("sha256sum", [zip], { encoding: "utf8" }).stdout.split(" ")[0]}  ${path.basename(zip)}\n`;

/**
 * Two mirror directories for TAMPERED_VERSION, each with the signature of the genuine build's
 * SHA256SUMS: `zip` serves another zip under that list, `sums` another zip with a list re-hashed
 * to match it (so only the signature can tell).
 */
export function tamperedReleases(): { zip: string; sums: string } {
    const sums = `consul_${TAMPERED_VERSION}_SHA256SUMS`;
    const genuine = fs.mkdtempSync(path.join(os.tmpdir(), "consul-genuine-"));
    fs.writeFileSync(path.join(genuine, sums), sha256Line(fakeZip(genuine, "genuine")));
    signWithTestKey(path.join(genuine, sums), path.join(genuine, `${sums}.sig`));
    const out = { zip: "", sums: "" };
    for (const kind of ["zip", "sums"] as const) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `consul-tampered-${kind}-`));
        const zip = fakeZip(dir, "tampered");
        const list = kind === "sums" ? sha256Line(zip) : fs.readFileSync(path.join(genuine, sums), "utf8");
        fs.writeFileSync(path.join(dir, sums), list);
        fs.copyFileSync(path.join(genuine, `${sums}.sig`), path.join(dir, `${sums}.sig`));
        out[kind] = dir;
    }
    return out;
}
