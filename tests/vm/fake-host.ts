// A fake VM host for running the real rendered host scripts (components/vm/scripts.ts) as a
// non-root test: every PATHS entry rebased under a temporary root, and a PATH of only this
// directory's tools. Real coreutils-style tools are linked in by name; the ones that would touch
// the machine or need a cluster are stubs that log their arguments: systemctl (a tiny state
// machine), consul, curl (canned responses), id, getent, user and group tools, chown, and an
// `install` that drops -o/-g. A tool not listed here is "not found", never the machine's own.
// This proves what the scripts do with files, commands and messages; the real-host suites
// (npm run test:e2e) remain the word on Consul, systemd and SSH.

import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PATHS, ScriptHost } from "../../components/vm/paths";

const REAL_TOOLS = [
    "awk",
    "base64",
    "cat",
    "chmod",
    "cmp",
    "cp",
    "cut",
    "date",
    "dirname",
    "find",
    "grep",
    "head",
    "ln",
    "mkdir",
    "mktemp",
    "mv",
    "rm",
    "sed",
    "sha256sum",
    "sleep",
    "stat",
    "tail",
    "touch",
    "tr",
    "uname",
    "wc",
];

function which(tool: string): string {
    for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
        const candidate = path.join(dir, tool);
        try {
            fs.accessSync(candidate, fs.constants.X_OK);
            return candidate;
        } catch {
            continue;
        }
    }
    throw new Error(`the fake host needs ${tool} on this machine`);
}

export interface Run {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
    /** One line per stub call, `<tool> <args>`, in order. */
    readonly calls: string[];
}

export class FakeHost {
    readonly root: string;
    /** PATHS, rebased under root. */
    readonly paths: ScriptHost["paths"];
    readonly host: ScriptHost;
    private readonly bin: string;
    private readonly state: string;
    private readonly log: string;

    constructor() {
        // Lower-case hex only: renderBundle accepts [a-z0-9._/-] paths.
        this.root = path.join(os.tmpdir(), `consul-fake-host-${crypto.randomBytes(6).toString("hex")}`);
        if (!/^\/[a-z0-9._/-]+$/.test(this.root)) throw new Error(`${this.root}: set TMPDIR to a lower-case path`);
        this.bin = path.join(this.root, "fake-bin");
        this.state = path.join(this.root, "fake-state");
        this.log = path.join(this.state, "calls.log");
        const rebased: Record<string, string> = {};
        for (const [key, value] of Object.entries(PATHS)) rebased[key] = this.root + value;
        this.paths = rebased as ScriptHost["paths"];
        this.host = { paths: this.paths, toolPath: this.bin };
        // What a host has before anything is installed.
        for (const dir of [
            this.bin,
            path.join(this.state, "curl"),
            this.paths.workParent,
            this.paths.stageParent,
            path.dirname(this.paths.binary),
            path.dirname(this.paths.profile),
            path.dirname(this.paths.unit),
            path.dirname(this.paths.dataDir),
        ]) {
            fs.mkdirSync(dir, { recursive: true });
        }
        for (const tool of REAL_TOOLS) fs.symlinkSync(which(tool), path.join(this.bin, tool));
        this.writeStubs(which("install"));
        this.set("consul-version", "1.16.2");
    }

    /** Stub state: consul-version, validate-fails, members, active, user, group, ... */
    set(name: string, content = ""): void {
        fs.writeFileSync(path.join(this.state, name), content);
    }

    unset(name: string): void {
        fs.rmSync(path.join(this.state, name), { force: true });
    }

    has(name: string): boolean {
        return fs.existsSync(path.join(this.state, name));
    }

    /** What curl prints for a URL path on the local agent or a server (the query string is ignored). */
    respond(urlPath: string, body: string): void {
        fs.writeFileSync(path.join(this.state, "curl", urlPath.replace(/\//g, "_")), body);
    }

    /** A file on the fake host, by its real path (PATHS value): "/etc/consul.d/managed-by". */
    file(realPath: string): string {
        return this.root + realPath;
    }

    /** Every file and directory under the fake host's root, except the fake tools and their state. */
    tree(): string[] {
        const out: string[] = [];
        const walk = (dir: string) => {
            for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
                const full = path.join(dir, entry.name);
                if (full === this.bin || full === this.state) continue;
                out.push(full.slice(this.root.length) + (entry.isDirectory() ? "/" : ""));
                if (entry.isDirectory()) walk(full);
            }
        };
        walk(this.root);
        return out.sort();
    }

    /** Runs a script as the command provider does (`sh -c <script> consul-node`), with an empty environment. */
    run(script: string, input = ""): Run {
        fs.writeFileSync(this.log, "");
        const result = spawnSync("/bin/sh", ["-c", script, "consul-node"], {
            input,
            encoding: "utf8",
            env: {},
            timeout: 60_000,
        });
        if (result.error) throw result.error;
        const calls = fs.readFileSync(this.log, "utf8").split("\n").filter(Boolean);
        return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls };
    }

    remove(): void {
        fs.rmSync(this.root, { recursive: true, force: true });
    }

    private stub(name: string, body: string): void {
        const file = path.join(this.bin, name);
        fs.writeFileSync(file, `#!/bin/sh\nLOG='${this.log}'\nS='${this.state}'\n${body}`);
        fs.chmodSync(file, 0o755);
    }

    private writeStubs(realInstall: string): void {
        const log = 'printf \'%s\\n\' "${0##*/} $*" >> "$LOG"\n';
        this.stub("id", `${log}case "$1" in -u) echo 0 ;; consul) [ -e "$S/user" ] ;; *) exit 1 ;; esac\n`);
        this.stub("getent", `${log}[ "$1 $2" = "group consul" ] && [ -e "$S/group" ]\n`);
        this.stub("groupadd", `${log}: > "$S/group"\n`);
        this.stub("useradd", `${log}: > "$S/user"\n`);
        this.stub("userdel", `${log}rm -f "$S/user"\n`);
        this.stub("groupdel", `${log}rm -f "$S/group"\n`);
        this.stub("chown", log);
        // Only a downloading host needs gpgv; no test here downloads.
        this.stub("gpgv", `${log}exit 2\n`);
        this.stub(
            "install",
            `${log}args=""\nwhile [ $# -gt 0 ]; do\n    case "$1" in -o | -g) shift 2 ;; *) args="$args '$1'"; shift ;; esac\ndone\n` +
                `eval "set -- $args"\nexec '${realInstall}' "$@"\n`,
        );
        // The unit is "failed" while the live main config says "broken" (a config that cannot start).
        this.stub(
            "systemctl",
            `${log}case "$1" in\n` +
                `    is-active) [ -e "$S/active" ] ;;\n` +
                `    is-failed) [ -e "$S/active" ] && grep -q broken '${this.paths.mainConfig}' ;;\n` +
                `    stop) rm -f "$S/active" ;;\n` +
                `    restart) n=$(cat "$S/invocation" 2>/dev/null || echo 0); echo $((n + 1)) > "$S/invocation"; : > "$S/active" ;;\n` +
                `    show) case "$3" in InvocationID) cat "$S/invocation" 2>/dev/null || echo 0 ;; NRestarts) echo 0 ;; esac ;;\n` +
                `esac\n`,
        );
        // The env the scripts give the CLI is logged too (the token file's path, never a token).
        this.stub(
            "consul",
            `${log}case "$1" in\n` +
                `    version) printf 'Consul v%s\\nRevision 0\\n' "$(cat "$S/consul-version")" ;;\n` +
                `    validate) if [ -e "$S/validate-fails" ]; then cat "$S/validate-fails" >&2; exit 1; fi; echo 'Configuration is valid!' ;;\n` +
                `    members) cat "$S/members" 2>/dev/null ;;\n` +
                `    *) printf 'consul-env %s %s %s\\n' "$CONSUL_HTTP_ADDR" "$CONSUL_CACERT" "$CONSUL_HTTP_TOKEN_FILE" >> "$LOG" ;;\n` +
                `esac\n`,
        );
        // curl: the response file for the URL's path (to stdout or -o), or an HTTP error (-f: exit 22).
        // It reads the `--config -` header from stdin: the token is never among the logged arguments.
        this.stub(
            "curl",
            `url=""; method=GET; config=0; out=""; prev=""\nfor a in "$@"; do\n` +
                `    if [ "$prev" = -o ]; then out=$a; fi\n` +
                `    case "$a" in https://* | http://*) url=$a ;; PUT | POST) method=$a ;; -) config=1 ;; esac\n` +
                `    prev=$a\ndone\n` +
                `if [ "$config" -eq 1 ]; then cat > /dev/null; fi\n` +
                `printf 'curl %s %s\\n' "$method" "$url" >> "$LOG"\n` +
                `p=\${url#*://}; p=/\${p#*/}; p=\${p%%\\?*}\n` +
                `f="$S/curl/$(printf '%s' "$p" | tr '/' '_')"\n` +
                `if [ ! -e "$f" ]; then exit 22; elif [ -n "$out" ]; then cat "$f" > "$out"; else cat "$f"; fi\n`,
        );
    }
}
