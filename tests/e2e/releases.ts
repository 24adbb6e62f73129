// Releases the suites serve from their mirror besides the one they built: a broken one, whose
// binary reports its version and validates configs but cannot start an agent (a failed upgrade).

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

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
