import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Settings } from "../../components/config";
import { agentPolicyBody as agentPolicyJson, AGENT_POLICY_NAME } from "../../components/security/agent-policy";
import { releaseKey } from "../../components/security/release-trust";
import { scriptHeader, shellQuote } from "../../components/shell";
import { NodeFile, renderBundle, sha256Hex } from "../../components/vm/bundle";
import { PATHS, ScriptHost, TOOL_PATH } from "../../components/vm/paths";
import { nodeFiles } from "../../components/vm";
import {
    aclScript,
    applyScript,
    ApplyScriptParams,
    pruneScript,
    removeScript,
    RemoveScriptParams,
    wrapForUser,
} from "../../components/vm/scripts";
import { FakeHost, Run } from "./fake-host";
import { sampleMaterial, sampleVmSettings } from "./fixtures";

const applyBase: ApplyScriptParams = {
    nodeName: "consul-server-1",
    role: "server",
    consulVersion: "1.16.2",
    installMode: "download",
    releaseMirrorUrl: "https://releases.hashicorp.com",
    releaseKey: releaseKey({}),
    httpsPort: 8501,
    serverCount: 3,
    isLastServer: false,
    serverApiUrls: [],
    updatedServers: [],
    waitSeconds: 300,
    bundleSha256: "0".repeat(64),
};

const removeBase: RemoveScriptParams = {
    nodeName: "s1",
    ownerId: "server-s1",
    role: "server",
    httpsPort: 8501,
    installMode: "download",
    serverCount: 3,
    waitSeconds: 300,
};

const SCRIPT_FILES = path.join(__dirname, "..", "..", "components", "vm", "scripts");

function sh(script: string, input = ""): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync("sh", ["-c", script], { input, encoding: "utf8" });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

// check-unassigned-uppercase: the scripts' parameters are upper case, which shellcheck otherwise
// assumes to come from the environment; with it, a misspelt parameter name is an error.
function shellcheck(script: string): { status: number | null; output: string } {
    const result = spawnSync(
        "shellcheck",
        ["--shell=sh", "--severity=style", "--enable=check-unassigned-uppercase", "-"],
        { input: script, encoding: "utf8" },
    );
    if (result.error) throw result.error;
    return { status: result.status, output: result.stdout + result.stderr };
}

const hasShellcheck = spawnSync("shellcheck", ["--version"]).status === 0;

/** The header's NAME='value' pairs, and the names the files' `readonly A B C` blocks declare. */
function parameters(script: string): { header: Map<string, string>; declared: Set<string> } {
    const header = new Map<string, string>();
    const declared = new Set<string>();
    for (const line of script.replace(/\\\n\s*/g, " ").split("\n")) {
        const assigned = /^readonly ([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
        if (assigned) {
            assert.ok(!header.has(assigned[1]), `${assigned[1]} twice in the header`);
            header.set(assigned[1], sh(`printf '%s' ${assigned[2]}`).stdout);
        } else if (/^readonly [A-Z0-9_ ]+$/.test(line)) {
            for (const name of line.slice("readonly ".length).trim().split(/\s+/)) declared.add(name);
        }
    }
    return { header, declared };
}

const everyScript: [string, (host?: ScriptHost) => string][] = [
    ["apply, server, download", (host) => applyScript(applyBase, host)],
    [
        "apply, client, preinstalled",
        (host) =>
            applyScript(
                {
                    ...applyBase,
                    role: "client",
                    installMode: "preinstalled",
                    serverApiUrls: ["https://10.0.0.1:8501", "https://[fd00::1]:8501"],
                },
                host,
            ),
    ],
    ["apply, last server", (host) => applyScript({ ...applyBase, isLastServer: true, serverCount: 1 }, host)],
    ["remove, server", (host) => removeScript(removeBase, host)],
    [
        "remove, client",
        (host) => removeScript({ ...removeBase, nodeName: "c1", ownerId: "client-c1", role: "client" }, host),
    ],
    [
        "prune",
        (host) => pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: ["s4", "s5"], waitSeconds: 300 }, host),
    ],
    [
        "acl",
        (host) =>
            aclScript(
                {
                    nodeName: "s1",
                    httpsPort: 8501,
                    policyName: AGENT_POLICY_NAME,
                    policyJson: agentPolicyJson(),
                    waitSeconds: 300,
                },
                host,
            ),
    ],
];

describe("script headers", () => {
    it("shellQuote survives every awkward character through sh", () => {
        for (const value of ["plain", "it's", "$(touch /tmp/x) `id` ${HOME}", 'a "b" \\ c', "", "a;b|c&d"]) {
            const out = sh(`printf '%s' ${shellQuote(value)}`);
            assert.strictEqual(out.stdout, value);
        }
    });

    it("renders read-only assignments; a script that assigns a parameter aborts there", () => {
        assert.strictEqual(scriptHeader({ A: "x y", B_2: 3 }), "readonly A='x y'\nreadonly B_2='3'\n");
        const out = sh(`set -eu\n${scriptHeader({ NODE: "n1" })}NODE=other\necho "not reached $NODE"\n`);
        assert.notStrictEqual(out.status, 0);
        assert.strictEqual(out.stdout, "");
        assert.match(out.stderr, /NODE/);
        // Declaring it again, as the files' parameter blocks do, is allowed and changes nothing.
        assert.strictEqual(sh(`set -eu\n${scriptHeader({ NODE: "n1" })}readonly NODE\necho "$NODE"`).stdout, "n1\n");
    });

    it("refuses names that are not upper-case identifiers, and values with CR, LF or NUL", () => {
        for (const name of ["node", "1A", "A-B", "A B", "", "A=B"]) {
            assert.throws(() => scriptHeader({ [name]: "x" }), /bad script parameter name/, name);
        }
        for (const value of ["a\nb", "a\rb", "a\0b"]) {
            assert.throws(() => scriptHeader({ A: value }), /cannot contain a line break/, JSON.stringify(value));
        }
    });

    it("puts parameters in quoted assignments: a hostile value stays data", () => {
        const script = applyScript({ ...applyBase, releaseMirrorUrl: "https://m.example/'; touch /tmp/pwned; '" });
        const headerEnd = script.indexOf("set -eu");
        const out = sh(script.slice(0, headerEnd) + 'printf "%s" "$MIRROR"');
        assert.strictEqual(out.stdout, "https://m.example/'; touch /tmp/pwned; '");
        assert.throws(() => applyScript({ ...applyBase, nodeName: "a\nb" }), /line break/);
        assert.throws(() => applyScript({ ...applyBase, bundleSha256: "nope" }), /sha256/);
    });
});

describe("script files", () => {
    const files = fs.readdirSync(SCRIPT_FILES).filter((f) => f.endsWith(".sh"));

    it("are the five parts, each a `# shellcheck shell=sh` file", () => {
        assert.deepStrictEqual(files.sort(), ["acl.sh", "apply.sh", "common.sh", "prune.sh", "remove.sh"]);
        for (const f of files) {
            assert.ok(fs.readFileSync(path.join(SCRIPT_FILES, f), "utf8").startsWith("# shellcheck shell=sh\n"), f);
        }
    });

    it("hard-code no path that PATHS defines: each comes from the header", () => {
        for (const f of files) {
            const code = fs
                .readFileSync(path.join(SCRIPT_FILES, f), "utf8")
                .split("\n")
                .filter((line) => !/^\s*#/.test(line));
            for (const value of [...Object.values(PATHS), TOOL_PATH]) {
                const line = code.find((l) => l.includes(value));
                assert.strictEqual(line, undefined, `${f} hard-codes ${value}`);
            }
        }
    });

    for (const [what, render] of everyScript) {
        it(`header and parameter blocks name the same variables: ${what}`, () => {
            const { header, declared } = parameters(render());
            assert.deepStrictEqual([...header.keys()].sort(), [...declared].sort());
        });
    }

    it("every path in a header is a PATHS entry or TOOL_PATH: a rebased host moves them all", () => {
        const rebased: ScriptHost = {
            paths: Object.fromEntries(Object.entries(PATHS).map(([k, v]) => [k, `/fake${v}`])) as ScriptHost["paths"],
            toolPath: "/fake/bin",
        };
        const pathValues = new Set<string>([...Object.values(PATHS), TOOL_PATH]);
        const named = new Set<string>();
        for (const [what, render] of everyScript) {
            const real = parameters(render()).header;
            const moved = parameters(render(rebased)).header;
            for (const [name, value] of real) {
                if (name === "TOOL_PATH") {
                    assert.strictEqual(value, TOOL_PATH);
                    assert.strictEqual(moved.get(name), "/fake/bin");
                } else if (value.startsWith("/")) {
                    assert.ok(pathValues.has(value), `${what}: ${name}=${value} is not from PATHS`);
                    assert.strictEqual(moved.get(name), `/fake${value}`, `${what}: ${name}`);
                    named.add(value);
                } else {
                    assert.strictEqual(moved.get(name), value, `${what}: ${name}`);
                }
            }
        }
        // The certificates and keys are named only by the TLS_DIR/*.pem and CLI_DIR/*.pem patterns.
        assert.deepStrictEqual(
            Object.entries(PATHS)
                .filter(([, value]) => !named.has(value))
                .map(([key]) => key),
            ["serverCert", "serverKey", "cliCert", "cliKey"],
        );
    });

    it("keeps comments out of the rendered script: only the shebang starts with #", () => {
        for (const [what, render] of everyScript) {
            const lines = render().split("\n");
            assert.strictEqual(lines[0], "#!/bin/sh", what);
            assert.deepStrictEqual(
                lines.slice(1).filter((l) => /^\s*#/.test(l)),
                [],
                what,
            );
        }
    });
});

describe("node scripts", () => {
    it("renders the bundle sorted and deterministic, and sh + base64 -d read it back byte for byte", () => {
        const files: NodeFile[] = [
            { path: "/etc/consul.d/tls/ca.pem", mode: "0644", owner: "root", group: "consul", content: "B\n" },
            {
                path: "/etc/consul.d/consul.json",
                mode: "0640",
                owner: "root",
                group: "consul",
                content: '{"x": "ü \' $y"}\n\nlast line without newline',
            },
        ];
        const bundle = renderBundle(files);
        assert.strictEqual(bundle, renderBundle([...files].reverse()));
        assert.ok(bundle.startsWith("/etc/consul.d/consul.json 0640 root consul "));
        const out = sh(
            `while IFS=' ' read -r path mode owner group data; do printf '%s %s %s %s|' "$path" "$mode" "$owner" "$group"; printf '%s' "$data" | base64 -d; printf '|'; done`,
            bundle,
        );
        assert.strictEqual(
            out.stdout,
            `/etc/consul.d/consul.json 0640 root consul|${files[1].content}|/etc/consul.d/tls/ca.pem 0644 root consul|B\n|`,
        );
        assert.strictEqual(sha256Hex(bundle), sha256Hex(renderBundle(files)));
    });

    it("refuses bundle entries outside the managed paths' grammar", () => {
        const file: NodeFile = { path: "/etc/x", mode: "0644", owner: "root", group: "root", content: "" };
        assert.throws(() => renderBundle([{ ...file, path: "/etc/../root/.ssh/authorized_keys" }]), /bad file path/);
        assert.throws(() => renderBundle([{ ...file, path: "relative" }]), /bad file path/);
        assert.throws(() => renderBundle([{ ...file, path: "/etc/a b" }]), /bad file path/);
        assert.throws(() => renderBundle([{ ...file, mode: "644" }]), /bad mode/);
        assert.throws(() => renderBundle([file, file]), /twice/);
    });

    it("runs as root directly and through sudo -n otherwise", () => {
        assert.match(wrapForUser("echo hi", "root"), /^sh -c 'echo hi' consul-node$/);
        assert.match(wrapForUser("echo hi", "ops"), /^sudo -n sh -c 'echo hi' consul-node$/);
    });

    // Text checks, for what the fake host below cannot show: the server and download paths.
    it("names every step of the apply script", () => {
        const script = applyScript(applyBase);
        for (const step of ["preflight", "install", "layout", "stage", "validate", "compare", "pre-restart", "swap"]) {
            assert.ok(script.includes(`STEP=${step}\n`), step);
        }
    });

    it("servers: hand leadership over before a restart, never consul leave; the download is checked before install", () => {
        const script = applyScript(applyBase);
        assert.ok(!/\bleave\b/.test(script.replace(/leave_on_terminate/g, "").replace(/left running/g, "")));
        assert.match(script, /\/v1\/operator\/raft\/transfer-leader/);
        assert.match(script, /\/v1\/operator\/autopilot\/health/);
        assert.ok(script.indexOf("STEP=pre-restart") < script.indexOf("STEP=swap"));
        // The signature check, then the SHA-256 check, come before the binary is staged.
        const gpgv = script.indexOf('gpgv --homedir "$WORK"');
        const sha = script.indexOf('if [ "$have" != "$want" ]');
        assert.ok(gpgv > 0 && sha > gpgv && sha < script.indexOf('install -m 0755 -o root -g root "$WORK'));
    });

    it("rolls back a new binary too (an upgrade), and gives up early on an agent that keeps crashing", () => {
        const script = applyScript(applyBase);
        // restore() puts back the previous binary and reports whether anything was put back.
        assert.match(
            script,
            /if \[ "\$path" = binary \]; then\n\s+if \[ -e "\$BIN.previous" \]; then mv -f "\$BIN.previous" "\$BIN" && restored=0; fi/,
        );
        assert.match(script, /NRestarts/);
        // Once healthy, the previous binary is deleted.
        assert.ok(script.lastIndexOf('rm -f "$BIN.previous"') > script.lastIndexOf("while ! ready; do"));
    });

    it("survives a dropped SSH session: HUP and PIPE are ignored, stale work dirs are removed", () => {
        for (const [what, render] of everyScript) assert.match(render(), /^trap '' HUP PIPE$/m, what);
        const apply = applyScript(applyBase);
        assert.match(apply, /find "\$WORK_PARENT" -maxdepth 1 -name 'consul-pulumi\.\*' -mmin \+60/);
        assert.match(apply, /^remove_stale_work$/m);
        // A script that ignores HUP keeps running when the session drops; shown for real here.
        const out = sh("trap '' HUP PIPE\nkill -HUP $$\necho still running");
        assert.strictEqual(out.stdout.trim(), "still running");
    });

    it("bootstraps ACLs with the management token from the root-only file: no agent config holds it", () => {
        const script = applyScript(applyBase);
        assert.match(script, /"BootstrapSecret"/);
        assert.match(script, /\/v1\/acl\/bootstrap/);
        assert.match(script, /bootstrapped with another token/);
    });

    it("the apply script marks a consul user as its own only when it created it", () => {
        const apply = applyScript(applyBase);
        assert.ok(apply.indexOf("created_user=1") > apply.indexOf("useradd"));
        assert.match(apply, /if \[ "\$created_user" -eq 1 \]; then : > "\$USER_MARKER"; fi/);
    });

    it("the ACL script creates the policy and the token from files, never from its own text", () => {
        const script = aclScript({
            nodeName: "consul-server-1",
            httpsPort: 8501,
            policyName: AGENT_POLICY_NAME,
            policyJson: agentPolicyJson(),
            waitSeconds: 300,
        });
        assert.match(script, /tr -d '\\n' < "\$AGENT_TOKEN"/);
        assert.strictEqual(parameters(script).header.get("AGENT_TOKEN"), PATHS.agentTokenFile);
        const policy = JSON.parse(agentPolicyJson()) as { Name: string; Rules: string };
        assert.deepStrictEqual(JSON.parse(policy.Rules), {
            node_prefix: { "": { policy: "write" } },
            service_prefix: { "": { policy: "read" } },
            service: { "consul-client": { policy: "write" } },
        });
    });

    it("the prune script takes only node names, sorted", () => {
        const script = pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: ["s5", "s4"], waitSeconds: 60 });
        assert.strictEqual(parameters(script).header.get("DEAD_NODES"), "s4 s5");
        for (const bad of ["$(x)", "s4 s5", "S4", "-s4", "s4-", "s4;id", ""]) {
            assert.throws(
                () => pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: [bad], waitSeconds: 1 }),
                /bad node name/,
                bad,
            );
        }
    });
});

// The real rendered scripts, run on a fake host (tests/vm/fake-host.ts): what they do to files,
// which commands they run in which order, and what they print. Consul, systemd and SSH are stubs
// here; the real-host suites (npm run test:e2e) remain the word on those.
describe("node scripts on a fake host", function () {
    this.timeout(60_000);
    const settings = sampleVmSettings();
    const vm = settings.vm as NonNullable<Settings["vm"]>;
    const material = sampleMaterial();
    const managementToken = String(material.managementToken);
    const secrets = [material.gossipKey, managementToken, String(material.agentToken), "SECRETSERVERKEY"];
    let host: FakeHost;
    beforeEach(() => {
        host = new FakeHost();
    });
    afterEach(() => host.remove());

    /** The files the program gives a host, at their places on the fake host. */
    const filesFor = (role: "server" | "client", edit: (f: NodeFile) => NodeFile = (f) => f) =>
        nodeFiles(settings, role, role === "server" ? vm.servers[0] : vm.clients[0], vm.servers, material).map((f) =>
            edit({ ...f, path: host.file(f.path) }),
        );
    const clientApply = (bundle: string, extra: Partial<ApplyScriptParams> = {}) =>
        applyScript(
            {
                ...applyBase,
                nodeName: "c1",
                role: "client",
                installMode: "preinstalled",
                serverApiUrls: ["https://10.0.0.11:8501"],
                waitSeconds: 5,
                bundleSha256: sha256Hex(bundle),
                ...extra,
            },
            host.host,
        );
    /** Stub calls of the tools that change the host or talk to the agent, fake root and random names removed. */
    const tools = (run: Run) =>
        run.calls
            .filter((c) =>
                /^(systemctl|consul|consul\.new|consul-env|curl|getent|groupadd|useradd|userdel|groupdel) /.test(c),
            )
            .map((c) =>
                c
                    .split(host.root)
                    .join("")
                    .replace(/\.consul-stage\.\w+/g, ".consul-stage.XXXXXX"),
            );
    const ok = (run: Run) => assert.strictEqual(run.status, 0, run.stderr);
    const noSecrets = (run: Run) => {
        const seen = run.stdout + run.stderr + run.calls.join("\n");
        for (const s of secrets) {
            assert.ok(!seen.includes(s) && !seen.includes(Buffer.from(s).toString("base64")), "a secret was printed");
        }
    };
    const write = (file: string, content: string, mode = 0o644) => {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, content, { mode });
    };

    describe("apply", () => {
        const ROOTS = "-----BEGIN CERTIFICATE-----\nROOTS\n-----END CERTIFICATE-----\n";
        /** A client host after a first apply, its agent running. */
        const installClient = (): string => {
            const bundle = renderBundle(filesFor("client"));
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
            host.respond("/v1/connect/ca/roots", ROOTS);
            ok(host.run(clientApply(bundle), bundle));
            return bundle;
        };

        it("refuses a stdin bundle whose digest differs, before it touches anything", () => {
            const bundle = renderBundle(filesFor("server"));
            const before = host.tree();
            // A first deploy of a downloading server, its stdin cut short on the way.
            const run = host.run(
                applyScript({ ...applyBase, bundleSha256: sha256Hex(bundle) }, host.host),
                bundle.slice(0, -10),
            );
            assert.strictEqual(run.status, 1);
            assert.strictEqual(
                run.stderr,
                "consul-server-1 preflight: FAILED: the file bundle on stdin does not match its digest; re-run pulumi up\n",
            );
            assert.strictEqual(run.stdout, "");
            assert.deepStrictEqual(run.calls, ["id -u"]);
            assert.deepStrictEqual(host.tree(), before, "nothing created, and its work directory removed");
            noSecrets(run);
        });

        it("a first install: stages, validates, swaps in with modes, starts the unit and waits for a leader", () => {
            const files = filesFor("client");
            const bundle = renderBundle(files);
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
            host.respond("/v1/connect/ca/roots", ROOTS);
            const run = host.run(clientApply(bundle), bundle);
            ok(run);
            const consul = path.join(host.host.toolPath, "consul");
            assert.deepStrictEqual(run.stdout.split("\n"), [
                "c1 preflight: ok",
                `c1 install: using preinstalled ${consul}`,
                "c1 layout: ok",
                `c1 stage: ${files.length} files staged`,
                "c1 validate: consul validate ok",
                `c1 compare: ${files.length + 1} changed, action: restart`,
                `c1 swap: new files in place (previous ones in ${host.paths.backupDir})`,
                "c1 wait: agent running, leader 10.0.0.11:8300",
                "",
            ]);
            assert.strictEqual(run.stderr, "");
            for (const f of files) {
                assert.strictEqual(fs.readFileSync(f.path, "utf8"), f.content, f.path);
                assert.strictEqual((fs.statSync(f.path).mode & 0o7777).toString(8).padStart(4, "0"), f.mode, f.path);
                assert.ok(run.calls.some((c) => c.startsWith(`chown ${f.owner}:${f.group} `) && c.endsWith(f.path)));
            }
            // The preinstalled binary is linked at PATHS.binary; the client trusts the Connect CA too.
            assert.strictEqual(fs.readlinkSync(host.paths.binary), consul);
            assert.strictEqual(fs.readFileSync(host.paths.agentCaBundle, "utf8"), material.caCertPem + ROOTS);
            assert.ok(fs.existsSync(host.paths.userMarker), "it created the consul user, and says so for removal");
            const stage = "/etc/.consul-stage.XXXXXX";
            assert.deepStrictEqual(tools(run), [
                "getent group consul",
                "groupadd --system consul",
                `useradd --system --gid consul --home-dir ${PATHS.dataDir} --no-create-home --shell /bin/false consul`,
                "consul version",
                `consul.new validate ${stage}${PATHS.mainConfig} ${stage}${PATHS.joinConfig} ${stage}${PATHS.secretConfig}`,
                "systemctl is-active --quiet consul.service",
                "systemctl daemon-reload",
                "systemctl enable --quiet consul.service",
                "systemctl show -p InvocationID --value consul.service",
                "systemctl show -p NRestarts --value consul.service",
                "systemctl restart --no-block consul.service",
                "curl GET https://10.0.0.11:8501/v1/connect/ca/roots?pem=true",
                "systemctl show -p NRestarts --value consul.service",
                "systemctl is-failed --quiet consul.service",
                "systemctl show -p InvocationID --value consul.service",
                "curl GET https://127.0.0.1:8501/v1/status/leader",
            ]);
            // No staging, work or backup directory is left.
            assert.deepStrictEqual(
                host.tree().filter((p) => /\.consul-|^\/tmp\/./.test(p)),
                [],
            );
            noSecrets(run);
        });

        it("a re-run with the files in place changes nothing and still waits for the agent", () => {
            const bundle = installClient();
            const before = host.tree();
            const run = host.run(clientApply(bundle), bundle);
            ok(run);
            assert.deepStrictEqual(run.stdout.split("\n").slice(1, 2), ["c1 install: consul 1.16.2 already installed"]);
            assert.deepStrictEqual(run.stdout.split("\n").slice(-5), [
                "c1 validate: consul validate ok",
                "c1 compare: nothing changed, agent left running",
                "c1 none: no agent action needed",
                "c1 wait: agent running, leader 10.0.0.11:8300",
                "",
            ]);
            const calls = tools(run);
            assert.ok(!calls.some((c) => / (restart|reload|stop)\b/.test(c)), calls.join("\n"));
            assert.strictEqual(calls[calls.length - 1], "curl GET https://127.0.0.1:8501/v1/status/leader");
            assert.deepStrictEqual(host.tree(), before);
        });

        it("refuses a bundle entry outside the files it manages, before any live file is written", () => {
            const files = filesFor("client");
            const outside = [
                renderBundle([...files, { ...files[0], path: host.file("/etc/cron.d/consul") }]),
                renderBundle(files) + `${host.paths.configDir}/../cron.d/consul 0644 root root ZWNobyBoaQo=\n`,
            ];
            for (const bundle of outside) {
                const run = host.run(clientApply(bundle), bundle);
                assert.strictEqual(run.status, 1);
                assert.match(
                    run.stderr,
                    /^c1 stage: FAILED: refusing to write \S+\/cron\.d\/consul(: not a file this program manages)?\n$/,
                );
                assert.ok(!fs.existsSync(host.file("/etc/cron.d")));
                for (const f of files) assert.ok(!fs.existsSync(f.path), f.path);
                assert.ok(!tools(run).some((c) => c.startsWith("systemctl ")));
                assert.deepStrictEqual(
                    host.tree().filter((p) => /\.consul-|^\/tmp\/./.test(p)),
                    [],
                );
            }
        });

        it("a config that consul validate rejects changes nothing on the host", () => {
            installClient();
            const before = host.tree();
            const live = fs.readFileSync(host.paths.mainConfig, "utf8");
            host.set("validate-fails", "Config validation failed: bad thing\n");
            const files = filesFor("client", (f) =>
                f.path === host.paths.mainConfig ? { ...f, content: '{"changed":true}\n' } : f,
            );
            const bundle = renderBundle(files);
            const run = host.run(clientApply(bundle), bundle);
            assert.strictEqual(run.status, 1);
            assert.strictEqual(
                run.stderr,
                "c1 validate: FAILED: consul validate rejected the new config, nothing was changed: Config validation failed: bad thing\n",
            );
            assert.strictEqual(fs.readFileSync(host.paths.mainConfig, "utf8"), live);
            assert.ok(!tools(run).some((c) => / (restart|reload|daemon-reload|enable)\b/.test(c)));
            assert.deepStrictEqual(host.tree(), before);
        });

        it("an agent that fails with its new config is rolled back to the previous files and started again", () => {
            installClient();
            const live = fs.readFileSync(host.paths.mainConfig, "utf8");
            // The fake systemd reports the unit failed while the live config says "broken".
            const files = filesFor("client", (f) =>
                f.path === host.paths.mainConfig ? { ...f, content: '{"broken":true}\n' } : f,
            );
            const bundle = renderBundle(files);
            const run = host.run(clientApply(bundle, { waitSeconds: 0 }), bundle);
            assert.strictEqual(run.status, 1);
            assert.ok(run.stdout.includes("c1 compare: 1 changed, action: restart\n"), run.stdout);
            assert.match(
                run.stderr,
                /^c1 wait: FAILED: gave up after \d+s waiting for the agent \(systemd reports consul.service failed\); rolled back to the previous binary and files, and the old agent is running and healthy again; see journalctl -u consul on c1\n$/,
            );
            assert.strictEqual(fs.readFileSync(host.paths.mainConfig, "utf8"), live);
            assert.strictEqual(tools(run).filter((c) => c.startsWith("systemctl restart ")).length, 2);
        });
    });

    describe("remove", () => {
        /** A host as the apply script leaves it, owned by `owner`, plus files that are not ours. */
        const installed = (owner: string, opts: { preinstalled?: boolean; createdUser?: boolean } = {}) => {
            write(host.file("/etc/profile.d/other.sh"), "# not ours\n");
            write(host.file("/usr/local/bin/other-tool"), "not ours\n", 0o755);
            write(host.file("/var/lib/other/state"), "not ours\n");
            const untouched = host.tree();
            const p = host.paths;
            write(p.mainConfig, "{}\n", 0o640);
            write(p.caFile, material.caCertPem);
            write(p.managementTokenFile, managementToken, 0o600);
            write(p.owner, `${owner}\n`);
            write(p.unit, "[Unit]\n");
            write(p.profile, "export CONSUL_HTTP_ADDR=x\n");
            write(path.join(p.dataDir, "raft", "raft.db"), "data", 0o600);
            write(p.backupDir + p.mainConfig, "{}\n");
            if (opts.createdUser) write(p.userMarker, "");
            if (opts.preinstalled) {
                fs.symlinkSync(path.join(host.host.toolPath, "consul"), p.binary);
            } else {
                write(p.binary, `#!/bin/sh\nexec '${path.join(host.host.toolPath, "consul")}' "$@"\n`, 0o755);
                write(`${p.binary}.previous`, "old binary\n", 0o755);
            }
            host.set("user");
            host.set("group");
            host.set("active");
            return untouched;
        };

        it("leaves the host alone when managed-by names another owner (the host moved to another resource)", () => {
            installed("client-s1", { createdUser: true });
            const before = host.tree();
            const run = host.run(removeScript(removeBase, host.host));
            ok(run);
            assert.strictEqual(
                run.stdout,
                "s1 leave: the agent here is now managed as client-s1, not server-s1: left as is\n",
            );
            assert.deepStrictEqual(run.calls, ["id -u"]);
            assert.deepStrictEqual(host.tree(), before);
            assert.ok(host.has("active") && host.has("user"));
        });

        it("a client of its own: stopped (leave_on_terminate), then its files, downloaded binary and created user go, and nothing else", () => {
            const untouched = installed("client-c1", { createdUser: true });
            const run = host.run(
                removeScript({ ...removeBase, nodeName: "c1", ownerId: "client-c1", role: "client" }, host.host),
            );
            ok(run);
            assert.strictEqual(
                run.stdout,
                "c1 leave: agent stopped\nc1 remove: unit, config, keys, data, binary, consul user removed\n",
            );
            assert.deepStrictEqual(tools(run), [
                "systemctl is-active --quiet consul.service",
                "systemctl stop consul.service",
                "systemctl disable --quiet consul.service",
                "systemctl daemon-reload",
                "userdel consul",
                "getent group consul",
                "groupdel consul",
            ]);
            assert.deepStrictEqual(host.tree(), untouched);
        });

        it("a preinstalled binary (and the link to it) stays, and so does a consul user it did not create", () => {
            const untouched = installed("client-c1", { preinstalled: true });
            const run = host.run(
                removeScript(
                    {
                        ...removeBase,
                        nodeName: "c1",
                        ownerId: "client-c1",
                        role: "client",
                        installMode: "preinstalled",
                    },
                    host.host,
                ),
            );
            ok(run);
            assert.strictEqual(run.stdout, "c1 leave: agent stopped\nc1 remove: unit, config, keys, data removed\n");
            assert.ok(!tools(run).some((c) => /^(userdel|groupdel) /.test(c)));
            assert.deepStrictEqual(host.tree(), [...untouched, PATHS.binary].sort());
            assert.strictEqual(fs.readlinkSync(host.paths.binary), path.join(host.host.toolPath, "consul"));
        });

        it("a server leaves once autopilot reports the cluster healthy, with the local CA and token file, then stops", () => {
            const untouched = installed("server-s1");
            host.respond("/v1/operator/autopilot/health", '{"Healthy":true,"FailureTolerance":1}');
            const run = host.run(removeScript(removeBase, host.host));
            ok(run);
            assert.strictEqual(
                run.stdout,
                "s1 leave: left the cluster\ns1 leave: agent stopped\ns1 remove: unit, config, keys, data, binary removed\n",
            );
            assert.deepStrictEqual(tools(run), [
                "systemctl is-active --quiet consul.service",
                "curl GET https://127.0.0.1:8501/v1/operator/autopilot/health",
                "consul leave",
                `consul-env https://127.0.0.1:8501 ${PATHS.caFile} ${PATHS.managementTokenFile}`,
                "systemctl stop consul.service",
                "systemctl disable --quiet consul.service",
                "systemctl daemon-reload",
            ]);
            assert.deepStrictEqual(host.tree(), untouched);
            noSecrets(run);
        });

        it("a server does not leave a cluster that autopilot does not report healthy: nothing is removed", () => {
            installed("server-s1", { createdUser: true });
            const before = host.tree();
            const run = host.run(removeScript({ ...removeBase, waitSeconds: 0 }, host.host));
            assert.strictEqual(run.status, 1);
            assert.strictEqual(
                run.stderr,
                "s1 leave: FAILED: autopilot has not reported the cluster healthy for 0s, so leaving could cost quorum; bring the failed server back, or list a dead one in deadHosts, then re-run pulumi up\n",
            );
            assert.deepStrictEqual(tools(run), [
                "systemctl is-active --quiet consul.service",
                "curl GET https://127.0.0.1:8501/v1/operator/autopilot/health",
            ]);
            assert.deepStrictEqual(host.tree(), before);
        });
    });

    describe("prune", () => {
        it("force-leaves a dead member, removes a dead server from the Raft peers, skips a name that is neither, waits for health", () => {
            write(host.paths.binary, `#!/bin/sh\nexec '${path.join(host.host.toolPath, "consul")}' "$@"\n`, 0o755);
            write(host.paths.caFile, material.caCertPem);
            write(host.paths.managementTokenFile, managementToken, 0o600);
            host.set(
                "members",
                "Node  Address          Status  Type    Build   Protocol  DC   Partition  Segment\n" +
                    "s1    10.0.0.11:8301  alive   server  1.16.2  2         dc1  default    <all>\n" +
                    "s4    10.0.0.14:8301  failed  server  1.16.2  2         dc1  default    <all>\n",
            );
            host.respond(
                "/v1/operator/raft/configuration",
                JSON.stringify({
                    Servers: [
                        { ID: "id-1", Node: "s1", Address: "10.0.0.11:8300", Leader: true, Voter: true },
                        { ID: "id-4", Node: "s4", Address: "10.0.0.14:8300", Leader: false, Voter: true },
                    ],
                    Index: 7,
                }),
            );
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
            host.respond("/v1/operator/autopilot/health", '{"Healthy":true,"FailureTolerance":0}');
            const run = host.run(
                pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: ["s5", "s4"], waitSeconds: 5 }, host.host),
            );
            ok(run);
            assert.strictEqual(
                run.stdout,
                "s1 prune: s4 force-left and pruned from the member list\n" +
                    "s1 prune: s4 removed from the Raft peers\n" +
                    "s1 wait: dead hosts pruned (s4 s5); leader 10.0.0.11:8300, autopilot healthy\n",
            );
            const env = `consul-env https://127.0.0.1:8501 ${PATHS.caFile} ${PATHS.managementTokenFile}`;
            assert.deepStrictEqual(tools(run), [
                "consul members",
                "consul force-leave -prune s4",
                env,
                "curl GET https://127.0.0.1:8501/v1/operator/raft/configuration",
                "consul operator raft remove-peer -id=id-4",
                env,
                "consul members",
                "curl GET https://127.0.0.1:8501/v1/operator/raft/configuration",
                "curl GET https://127.0.0.1:8501/v1/status/leader",
                "curl GET https://127.0.0.1:8501/v1/operator/autopilot/health",
                "curl GET https://127.0.0.1:8501/v1/status/leader",
            ]);
            noSecrets(run);
        });
    });
});

describe("shellcheck on the rendered scripts", function () {
    before(function () {
        if (!hasShellcheck) throw new Error("shellcheck is not installed: run scripts/ensure-tools.sh (npm test does)");
    });
    for (const [what, render] of everyScript) {
        it(`passes: ${what}`, () => {
            const result = shellcheck(render());
            assert.strictEqual(result.status, 0, result.output);
        });
        it(`parses with sh -n: ${what}`, () => {
            const result = spawnSync("sh", ["-n"], { input: render(), encoding: "utf8" });
            assert.strictEqual(result.status, 0, result.stderr);
        });
    }
    it("is an honest check: it flags an unquoted expansion, and a misspelt upper-case parameter", () => {
        assert.notStrictEqual(shellcheck('#!/bin/sh\nx="a b"\nrm $x\n').status, 0);
        assert.notStrictEqual(shellcheck("#!/bin/sh\nreadonly NODE='n1'\necho \"$NDOE\"\n").status, 0);
    });
});

describe("leadership hand-over target", () => {
    // The function as rendered, with the local API faked by a canned raft configuration.
    const script = applyScript(applyBase);
    const fn = script.slice(
        script.indexOf("transfer_target() {"),
        script.indexOf("\n}\n", script.indexOf("transfer_target() {")) + 3,
    );
    const raft = JSON.stringify({
        Servers: [
            { ID: "id-1", Node: "s1", Address: "10.0.0.11:8300", Leader: false, ProtocolVersion: "3", Voter: true },
            { ID: "id-2", Node: "s2", Address: "10.0.0.12:8300", Leader: true, ProtocolVersion: "3", Voter: true },
            { ID: "id-4", Node: "s4", Address: "10.0.0.14:8300", Leader: false, ProtocolVersion: "3", Voter: false },
            { ID: "id-6", Node: "s6", Address: "[fd00::6]:8300", Leader: false, ProtocolVersion: "3", Voter: true },
        ],
        Index: 42,
    });
    const target = (updated: string) =>
        sh(
            `set -eu\nUPDATED_SERVERS='${updated}'\ntoken_file() { :; }\napi() { printf '%s' '${raft}'; }\n${fn}\ntransfer_target`,
        );

    it("picks a voter the rollout already changed, so leadership moves once", () => {
        assert.deepStrictEqual(target("10.0.0.11"), { status: 0, stdout: "id-1 updated", stderr: "" });
        assert.strictEqual(target("10.0.0.1 10.0.0.11").stdout, "id-1 updated", "10.0.0.1 must not match 10.0.0.11");
        assert.strictEqual(target("fd00::6").stdout, "id-6 updated");
    });

    it("names another voter (never itself, the leader, nor a non-voter) when none is updated yet", () => {
        for (const updated of ["", "10.0.0.14", "10.9.9.9"]) assert.strictEqual(target(updated).stdout, "id-1 other");
    });

    it("the apply script passes the target to the transfer-leader API (the 1.16 CLI drops -id), then says it falls back to any follower", () => {
        assert.match(
            script,
            /"https:\/\/127\.0\.0\.1:\$HTTPS_PORT\/v1\/operator\/raft\/transfer-leader\$\{1:\+\?id=\$1\}"/,
        );
        assert.doesNotMatch(script, /operator raft transfer-leader/);
        assert.match(
            script,
            /if out=\$\(transfer_leadership "\$target"\) \|\| \{\n.*say "transfer to \$target refused .*to any follower instead" &&\n\s+out=\$\(transfer_leadership ""\)/,
        );
        assert.match(
            applyScript({ ...applyBase, updatedServers: ["10.0.0.11", "10.0.0.12"] }),
            /^readonly UPDATED_SERVERS='10.0.0.11 10.0.0.12'$/m,
        );
    });
});

describe("node script failure reporting", () => {
    const common = (body: string) => {
        const script = removeScript({
            nodeName: "host-a",
            ownerId: "client-host-a",
            role: "client",
            httpsPort: 8501,
            installMode: "download",
            serverCount: 3,
            waitSeconds: 300,
        });
        // The shared helpers without the remove body: header + COMMON up to the body's first step.
        return script.slice(0, script.indexOf("STEP=leave")) + body;
    };

    it("fail() names the host, the step and the fix, and exits non-zero", () => {
        const out = sh(common('STEP=stage\nfail "disk full; free space in /etc"\n'));
        assert.strictEqual(out.status, 1);
        assert.strictEqual(out.stderr, "host-a stage: FAILED: disk full; free space in /etc\n");
    });

    it("an unexpected failure under set -e still names the host and the step", () => {
        const out = sh(common("STEP=swap\nfalse\necho not reached\n"));
        assert.strictEqual(out.status, 1);
        assert.match(out.stderr, /^host-a swap: FAILED: a command exited with status 1/);
        assert.ok(!out.stdout.includes("not reached"));
    });

    it("progress lines are host, step, result", () => {
        const out = sh(common('STEP=validate\nsay "consul validate ok"\n'));
        assert.strictEqual(out.status, 0);
        assert.strictEqual(out.stdout, "host-a validate: consul validate ok\n");
    });
});
