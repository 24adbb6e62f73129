// What the VM scripts say and check in their text: the bundle format, the hand-over target's edge
// cases, and how a failure is reported. What they do to a host is tests/vm/scripts-on-host.test.ts,
// tests/vm/server-and-acl-on-host.test.ts and tests/vm/release-download.test.ts.

import * as assert from "assert";
import { agentPolicyBody as agentPolicyJson, AGENT_POLICY_NAME } from "../../components/security/agent-policy";
import { NodeFile, renderBundle, sha256Hex } from "../../components/vm/bundle";
import { PATHS } from "../../components/vm/paths";
import { aclScript } from "../../components/vm/acl-steps";
import { applyScript, pruneScript, removeScript, wrapForUser } from "../../components/vm/scripts";
import { applyBase, sh, parameters, everyScript } from "./script-cases";

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

    // Text checks, for what the fake-host runs do not cover: every path of the script at once.
    it("servers never run consul leave on apply (the leader hands over instead)", () => {
        const script = applyScript(applyBase);
        assert.ok(!/\bleave\b/.test(script.replace(/leave_on_terminate/g, "").replace(/left running/g, "")));
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
        assert.strictEqual(parameters(script).header.get("TOKEN_FILE"), PATHS.agentTokenFile);
        assert.strictEqual(parameters(script).header.get("TOKEN_NAME"), "agent");
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
