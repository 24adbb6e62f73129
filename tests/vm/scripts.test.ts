import * as assert from "assert";
import { spawnSync } from "child_process";
import {
    aclScript,
    applyScript,
    ApplyScriptParams,
    NodeFile,
    pruneScript,
    removeScript,
    renderBundle,
    sha256Hex,
    shellQuote,
    wrapForUser,
} from "../../components/vm/scripts";
import { agentPolicyBody as agentPolicyJson, AGENT_POLICY_NAME } from "../../components/security/agent-policy";
import { releaseKey } from "../../components/security/release-trust";

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

function sh(script: string, input = ""): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync("sh", ["-c", script], { input, encoding: "utf8" });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function shellcheck(script: string): { status: number | null; output: string } {
    const result = spawnSync("shellcheck", ["--shell=sh", "--severity=style", "-"], {
        input: script,
        encoding: "utf8",
    });
    if (result.error) throw result.error;
    return { status: result.status, output: result.stdout + result.stderr };
}

const hasShellcheck = spawnSync("shellcheck", ["--version"]).status === 0;

describe("node scripts", () => {
    it("shellQuote survives every awkward character through sh", () => {
        for (const value of ["plain", "it's", "$(touch /tmp/x) `id` ${HOME}", 'a "b" \\ c', "", "a;b|c&d"]) {
            const out = sh(`printf '%s' ${shellQuote(value)}`);
            assert.strictEqual(out.stdout, value);
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

    it("names the host and the step in progress lines and failures, and never prints stdin", () => {
        const script = applyScript(applyBase);
        assert.match(script, /printf '%s %s: %s\\n' "\$NODE" "\$STEP"/);
        assert.match(script, /printf '%s %s: FAILED: %s\\n' "\$NODE" "\$STEP" "\$1" >&2/);
        // The bundle goes to a root-only temp file and through base64 -d into the staging dir only.
        assert.match(script, /cat > "\$WORK\/bundle"/);
        assert.ok(!/cat "\$WORK\/bundle"/.test(script));
        for (const step of ["preflight", "install", "layout", "stage", "validate", "compare", "pre-restart", "swap"]) {
            assert.ok(script.includes(`STEP=${step}\n`), step);
        }
    });

    it("validates the staged set before anything is swapped in, then restarts without consul leave", () => {
        const script = applyScript(applyBase);
        const validate = script.indexOf('"$CONSUL" validate "$STAGE$MAIN" "$STAGE$JOIN" "$STAGE$SECRET"');
        const swap = script.indexOf("STEP=swap");
        const restart = script.indexOf("systemctl restart --no-block consul.service");
        assert.ok(validate > 0 && swap > validate && restart > swap);
        assert.ok(!/\bleave\b/.test(script.replace(/leave_on_terminate/g, "").replace(/left running/g, "")));
        assert.match(script, /\/v1\/operator\/raft\/transfer-leader/);
        assert.match(script, /\/v1\/operator\/autopilot\/health/);
        // The SHA-256 check comes before install.
        assert.ok(
            script.indexOf('if [ "$have" != "$want" ]') < script.indexOf('install -m 0755 -o root -g root "$WORK'),
        );
    });

    it("a re-run whose files are already in place still waits for a healthy cluster before it ends", () => {
        const script = applyScript(applyBase);
        const unchanged = script.indexOf('say "nothing changed, agent left running"');
        assert.ok(unchanged > 0);
        // No early exit: the path falls through to the wait, like any other run.
        const rest = script.slice(unchanged);
        assert.ok(rest.indexOf("exit 0") < 0 || rest.indexOf("exit 0") > rest.indexOf('STEP="wait"'));
        assert.ok(rest.indexOf('STEP="wait"') > 0);
    });

    it("rolls back a new binary alone (an upgrade), and gives up early on an agent that keeps crashing", () => {
        const script = applyScript(applyBase);
        // restore() puts back the previous binary and reports whether anything was put back.
        assert.match(
            script,
            /if \[ "\$path" = binary \]; then\n\s+if \[ -e "\$BIN.previous" \]; then mv -f "\$BIN.previous" "\$BIN" && restored=0; fi/,
        );
        assert.match(script, /if \[ -s "\$WORK\/changed" \] && restore; then/);
        assert.doesNotMatch(script, /ls -A "\$BACKUP"/);
        assert.match(script, /NRestarts/);
        // Once healthy, the previous files (old keys, tokens) and binary are deleted.
        const waitLoop = script.lastIndexOf("while ! ready; do");
        assert.ok(waitLoop > 0 && script.lastIndexOf('rm -rf "$BACKUP"') > waitLoop);
        assert.ok(script.lastIndexOf('rm -f "$BIN.previous"') > waitLoop);
    });

    it("survives a dropped SSH session: HUP and PIPE are ignored, stale work dirs are removed", () => {
        for (const script of [
            applyScript(applyBase),
            pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: ["s3"], waitSeconds: 9 }),
        ]) {
            assert.match(script, /^trap '' HUP PIPE$/m);
        }
        const apply = applyScript(applyBase);
        assert.match(apply, /find \/tmp -maxdepth 1 -name 'consul-pulumi\.\*' -mmin \+60/);
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

    it("the prune script force-leaves and removes dead peers from a live server, then waits for health", () => {
        const script = pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: ["s5", "s4"], waitSeconds: 60 });
        assert.match(script, /^DEAD_NODES='s4 s5'$/m);
        assert.match(script, /force-leave -prune "\$dead"/);
        assert.match(script, /operator raft remove-peer -id="\$id"/);
        assert.ok(script.indexOf("remove-peer") < script.indexOf("autopilot/health"));
        assert.throws(
            () => pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: ["$(x)"], waitSeconds: 1 }),
            /bad node name/,
        );
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
        const policy = JSON.parse(agentPolicyJson()) as { Name: string; Rules: string };
        assert.deepStrictEqual(JSON.parse(policy.Rules), {
            node_prefix: { "": { policy: "write" } },
            service_prefix: { "": { policy: "read" } },
            service: { "consul-client": { policy: "write" } },
        });
    });

    it("the remove script leaves (servers) or stops with leave_on_terminate (clients), then removes", () => {
        const server = removeScript({
            nodeName: "s1",
            ownerId: "server-s1",
            role: "server",
            httpsPort: 8501,
            installMode: "download",
            serverCount: 3,
            waitSeconds: 300,
        });
        assert.match(server, /"\$BIN" leave/);
        // A server leaves only while autopilot reports the others healthy (quorum after it leaves).
        assert.ok(server.indexOf("/v1/operator/autopilot/health") < server.indexOf('"$BIN" leave'));
        assert.ok(server.indexOf('"$BIN" leave') < server.indexOf("rm -f /etc/systemd/system/consul.service"));
        // A host that moved to another resource (client <-> server, renamed) is left alone: the new
        // resource's create ran before this delete.
        assert.match(server, /OWNER_ID='server-s1'/);
        assert.ok(server.indexOf('!= "$OWNER_ID"') < server.indexOf('"$BIN" leave'));
    });

    it("the remove script deletes a downloaded binary and a user it created, and nothing preinstalled", () => {
        const params = {
            nodeName: "s1",
            ownerId: "server-s1",
            role: "server",
            httpsPort: 8501,
            serverCount: 3,
            waitSeconds: 300,
        } as const;
        const downloaded = removeScript({ ...params, installMode: "download" });
        assert.match(downloaded, /^INSTALL_MODE='download'$/m);
        assert.match(downloaded, /if \[ "\$INSTALL_MODE" = download \]; then\n\s+rm -f "\$BIN"/);
        assert.match(removeScript({ ...params, installMode: "preinstalled" }), /^INSTALL_MODE='preinstalled'$/m);
        // The user goes only if the apply script left the marker, and before the marker's directory.
        assert.ok(downloaded.indexOf('if [ -e "$USER_MARKER" ]') < downloaded.indexOf("rm -rf /etc/consul.d"));
        assert.ok(downloaded.indexOf("userdel consul") > downloaded.indexOf('if [ -e "$USER_MARKER" ]'));
        const apply = applyScript(applyBase);
        assert.ok(apply.indexOf("created_user=1") > apply.indexOf("useradd"));
        assert.match(apply, /if \[ "\$created_user" -eq 1 \]; then : > "\$USER_MARKER"; fi/);
    });

    describe("shellcheck", function () {
        before(function () {
            if (!hasShellcheck)
                throw new Error("shellcheck is not installed: run scripts/ensure-tools.sh (npm test does)");
        });
        const scripts: [string, () => string][] = [
            ["apply, server, download", () => applyScript(applyBase)],
            [
                "apply, client, preinstalled",
                () =>
                    applyScript({
                        ...applyBase,
                        role: "client",
                        installMode: "preinstalled",
                        serverApiUrls: ["https://10.0.0.1:8501", "https://[fd00::1]:8501"],
                    }),
            ],
            ["apply, last server", () => applyScript({ ...applyBase, isLastServer: true, serverCount: 1 })],
            [
                "remove, server",
                () =>
                    removeScript({
                        nodeName: "s1",
                        ownerId: "server-s1",
                        role: "server",
                        httpsPort: 8501,
                        installMode: "download",
                        serverCount: 3,
                        waitSeconds: 300,
                    }),
            ],
            [
                "remove, client",
                () =>
                    removeScript({
                        nodeName: "c1",
                        ownerId: "client-c1",
                        role: "client",
                        httpsPort: 8501,
                        installMode: "download",
                        serverCount: 3,
                        waitSeconds: 300,
                    }),
            ],
            [
                "prune",
                () => pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: ["s4", "s5"], waitSeconds: 300 }),
            ],
            [
                "acl",
                () =>
                    aclScript({
                        nodeName: "s1",
                        httpsPort: 8501,
                        policyName: AGENT_POLICY_NAME,
                        policyJson: agentPolicyJson(),
                        waitSeconds: 300,
                    }),
            ],
        ];
        for (const [what, render] of scripts) {
            it(`passes: ${what}`, () => {
                const result = shellcheck(render());
                assert.strictEqual(result.status, 0, result.output);
            });
            it(`parses with sh -n: ${what}`, () => {
                const result = spawnSync("sh", ["-n"], { input: render(), encoding: "utf8" });
                assert.strictEqual(result.status, 0, result.stderr);
            });
        }
        it("is an honest check: it flags an unquoted expansion", () => {
            assert.notStrictEqual(shellcheck('#!/bin/sh\nx="a b"\nrm $x\n').status, 0);
        });
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
            /^UPDATED_SERVERS='10.0.0.11 10.0.0.12'$/m,
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
