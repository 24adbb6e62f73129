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

/** One curl call as the stub saw it. */
export interface CurlRequest {
    readonly method: string;
    /** The whole URL, query string included. */
    readonly url: string;
    /** Every argument curl was given, as given. */
    readonly argv: string[];
    /** What the script piped in for `--config -` (the X-Consul-Token header line); "" if none. */
    readonly config: string;
    /** The `--data-binary @file` body; undefined if none. */
    readonly body?: string;
}

const CURL_STUB = [
    'url=""; method=GET; config=0; out=""; data=""; prev=""; w=""; failing=0',
    'for a in "$@"; do',
    '    case "$prev" in -o) out=$a ;; -w) w=$a ;; -X) method=$a ;; --data-binary) data=$a ;; --config) [ "$a" != - ] || config=1 ;; esac',
    '    case "$a" in --*) ;; -*f*) failing=1 ;; esac',
    '    case "$a" in https://* | http://*) url=$a ;; esac',
    "    prev=$a",
    "done",
    'if [ "$method" = GET ] && [ -n "$data" ]; then method=POST; fi',
    'n=$(cat "$S/requests/count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$S/requests/count"',
    'r="$S/requests/$n"; mkdir "$r"',
    'for a in "$@"; do printf \'%s\\n\' "$a"; done > "$r/argv"',
    'printf \'%s %s\\n\' "$method" "$url" > "$r/request"',
    'if [ "$config" -eq 1 ]; then cat > "$r/config"; else : > "$r/config"; fi',
    'case "$data" in @*) cp "${data#@}" "$r/body" ;; esac',
    'printf \'curl %s %s\\n\' "$method" "$url" >> "$LOG"',
    "p=${url#*://}; p=/${p#*/}; p=${p%%\\?*}",
    "key=$method$(printf '%s' \"$p\" | tr '/' '_')",
    'tok=$(sed -n \'s/^header = "X-Consul-Token: \\(.*\\)"$/\\1/p\' "$r/config")',
    'f=""',
    'if [ -n "$tok" ]; then f="$S/curl/$key.$(printf \'%s\' "$tok" | sha256sum | cut -d \' \' -f 1)"; fi',
    'if [ -z "$f" ] || [ ! -e "$f" ]; then f="$S/curl/$key"; fi',
    // -w '%{http_code}' without -f: an HTTP error is a status, printed, and curl succeeds.
    'if [ ! -e "$f" ]; then',
    '    if [ -n "$w" ] && [ "$failing" -eq 0 ]; then printf 404; exit 0; fi',
    "    printf 'curl: (22) The requested URL returned error: 404\\n' >&2; exit 22",
    "fi",
    "code=200",
    'if [ -x "$f" ]; then',
    '    rc=0; URL=$url METHOD=$method BODY="$r/body" "$f" > "$r/response" || rc=$?',
    '    if [ "$rc" -eq 22 ] && [ -n "$w" ] && [ "$failing" -eq 0 ]; then code=500; elif [ "$rc" -ne 0 ]; then exit "$rc"; fi',
    '    f="$r/response"',
    "fi",
    'if [ -n "$out" ]; then cat "$f" > "$out"; else cat "$f"; fi',
    'if [ -n "$w" ]; then printf %s "$code"; fi',
    "",
].join("\n");

export interface Run {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
    /** One line per stub call, `<tool> <args>`, in order. */
    readonly calls: string[];
    /** Every curl call, in order. */
    readonly requests: CurlRequest[];
}

export interface ResponseOptions {
    /** The request method it answers (default GET). */
    readonly method?: string;
    /** Answer only a request that sends this X-Consul-Token (through `--config -`). */
    readonly token?: string;
    /**
     * Put it in a named set instead of the live responses: a responder script's `switch_to <set>`
     * copies the set over the live responses (the agent's state changing, a leader moving).
     */
    readonly set?: string;
}

export class FakeHost {
    readonly root: string;
    /** PATHS, rebased under root. */
    readonly paths: ScriptHost["paths"];
    readonly host: ScriptHost;
    private readonly bin: string;
    private readonly state: string;
    private readonly log: string;

    /** `realTools`: the machine's own tools to link in, in place of any stub (gpgv, unzip). */
    constructor(opts: { readonly realTools?: readonly string[] } = {}) {
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
            path.join(this.state, "curl-sets"),
            path.join(this.state, "requests"),
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
        for (const tool of opts.realTools ?? []) {
            const real = which(tool);
            fs.rmSync(path.join(this.bin, tool), { force: true });
            fs.symlinkSync(real, path.join(this.bin, tool));
        }
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

    /** A stub state file's content (one a responder wrote, say). */
    read(name: string): string {
        return fs.readFileSync(path.join(this.state, name), "utf8");
    }

    /**
     * What curl prints (or writes to its -o file) for a URL path on the local agent, a server or
     * the release mirror (the query string is ignored). A request nothing answers is an HTTP error
     * (curl -f: exit 22).
     */
    respond(urlPath: string, body: string | Buffer, opts: ResponseOptions = {}): void {
        fs.writeFileSync(this.responseFile(urlPath, opts), body);
    }

    /**
     * A responder: a sh script run for each matching request, its stdout the response and its exit
     * status curl's (22 for an HTTP error). It gets URL, METHOD and BODY (a file) in its
     * environment, S (the stub state directory) and a `switch_to <set>` function.
     */
    respondWith(urlPath: string, script: string, opts: ResponseOptions = {}): void {
        const file = this.responseFile(urlPath, opts);
        fs.writeFileSync(
            file,
            `#!/bin/sh\nS='${this.state}'\nswitch_to() { cp "$S/curl-sets/$1/"* "$S/curl/"; }\n${script}`,
        );
        fs.chmodSync(file, 0o755);
    }

    private responseFile(urlPath: string, opts: ResponseOptions): string {
        const dir = opts.set === undefined ? "curl" : path.join("curl-sets", opts.set);
        fs.mkdirSync(path.join(this.state, dir), { recursive: true });
        const token =
            opts.token === undefined ? "" : "." + crypto.createHash("sha256").update(opts.token).digest("hex");
        return path.join(this.state, dir, (opts.method ?? "GET") + urlPath.replace(/\//g, "_") + token);
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

    /**
     * Runs a script as the command provider does (`sh -c <script> consul-node`), with an empty
     * environment; `args` are the script's arguments (a script installed on the host, run by hand).
     */
    run(script: string, input = "", args: readonly string[] = []): Run {
        fs.writeFileSync(this.log, "");
        const requests = path.join(this.state, "requests");
        fs.rmSync(requests, { recursive: true, force: true });
        fs.mkdirSync(requests);
        const result = spawnSync("/bin/sh", ["-c", script, "consul-node", ...args], {
            input,
            encoding: "utf8",
            env: {},
            timeout: 60_000,
        });
        if (result.error) throw result.error;
        const calls = fs.readFileSync(this.log, "utf8").split("\n").filter(Boolean);
        const count = fs.existsSync(path.join(requests, "count"))
            ? Number(fs.readFileSync(path.join(requests, "count"), "utf8"))
            : 0;
        const sent: CurlRequest[] = [];
        for (let n = 1; n <= count; n++) {
            const read = (name: string) => fs.readFileSync(path.join(requests, String(n), name), "utf8");
            const [method, url] = read("request").trimEnd().split(" ");
            const body = fs.existsSync(path.join(requests, String(n), "body")) ? read("body") : undefined;
            sent.push({ method, url, argv: read("argv").split("\n").slice(0, -1), config: read("config"), body });
        }
        return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls, requests: sent };
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
        // Only a downloading host needs gpgv; the tests that download link in the real one (realTools).
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
        // curl: the response for the method, the URL's path and the X-Consul-Token it was sent (read
        // from the `--config -` stdin, so the token is never among the logged arguments), written to
        // stdout or -o, or an HTTP error (-f: exit 22). Each request's argv, config and body are kept.
        this.stub("curl", CURL_STUB);
    }
}
