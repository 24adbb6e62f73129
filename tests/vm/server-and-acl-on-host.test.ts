// The server apply's leader hand-over and the ACL script, run on a fake host (tests/vm/fake-host.ts)
// against a stub curl that answers the local agent's API as Consul does, per method, path and token,
// and records every request: which requests the scripts make, in which order, with which token
// (sent on curl's stdin, never its arguments) and which bodies. The real-host suites remain the
// word on Consul itself.

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { agentPolicyBody as agentPolicyJson, AGENT_POLICY_NAME } from "../../components/security/agent-policy";
import { Settings } from "../../components/config";
import { NodeFile, renderBundle, sha256Hex } from "../../components/vm/bundle";
import { nodeFiles } from "../../components/vm";
import { aclScript } from "../../components/vm/acl-steps";
import { applyScript } from "../../components/vm/scripts";
import { CurlRequest, FakeHost, Run } from "./fake-host";
import { sampleMaterial, sampleVmSettings } from "./fixtures";
import { applyBase } from "./script-cases";

describe("server and ACL scripts on a fake host", function () {
    this.timeout(60_000);
    const settings = sampleVmSettings();
    const vm = settings.vm as NonNullable<Settings["vm"]>;
    const material = sampleMaterial();
    const managementToken = String(material.managementToken);
    const agentToken = String(material.agentToken);
    const secrets = [material.gossipKey, managementToken, agentToken];
    const AGENT = "https://127.0.0.1:8501";
    let host: FakeHost;
    beforeEach(() => {
        host = new FakeHost();
    });
    afterEach(() => host.remove());

    const ok = (run: Run) => assert.strictEqual(run.status, 0, run.stderr);
    /** No secret in the output or in any tool's arguments (curl's included). */
    const noSecrets = (run: Run) => {
        const seen = [run.stdout, run.stderr, ...run.calls, ...run.requests.flatMap((r) => r.argv)].join("\n");
        for (const s of secrets) {
            assert.ok(!seen.includes(s) && !seen.includes(Buffer.from(s).toString("base64")), "a secret was printed");
        }
    };
    /** The request carried the management token, as the `--config -` header curl read on stdin. */
    const withManagementToken = (r: CurlRequest) =>
        assert.strictEqual(r.config, `header = "X-Consul-Token: ${managementToken}"\n`, `${r.method} ${r.url}`);
    const mgmt = { token: managementToken };

    describe("apply on the Raft leader: hands leadership over before it restarts", () => {
        // s1 is this host and the leader; s4 is a non-voter.
        const raft = [
            { ID: "id-1", Node: "s1", Address: "10.0.0.11:8300", Leader: true, ProtocolVersion: "3", Voter: true },
            { ID: "id-4", Node: "s4", Address: "10.0.0.14:8300", Leader: false, ProtocolVersion: "3", Voter: false },
            { ID: "id-2", Node: "s2", Address: "10.0.0.12:8300", Leader: false, ProtocolVersion: "3", Voter: true },
            { ID: "id-3", Node: "s3", Address: "10.0.0.13:8300", Leader: false, ProtocolVersion: "3", Voter: true },
        ];
        /** /v1/agent/self as Consul answers it (abridged): Stats.consul.leader is a string. */
        const agentSelf = (leader: boolean, leaderAddr: string) =>
            JSON.stringify({
                Config: { Datacenter: "dc1", NodeName: "s1", Server: true, Version: "1.16.2" },
                Member: { Name: "s1", Addr: "10.0.0.11", Port: 8301, Status: 1 },
                Stats: {
                    consul: {
                        acl: "enabled",
                        bootstrap: "false",
                        known_datacenters: "1",
                        leader: String(leader),
                        leader_addr: leaderAddr,
                        server: "true",
                    },
                },
            });
        const files = (edit: (f: NodeFile) => NodeFile = (f) => f) =>
            nodeFiles(settings, "server", vm.servers[0], vm.servers, material).map((f) =>
                edit({ ...f, path: host.file(f.path) }),
            );
        const serverApply = (bundle: string, updatedServers: string[] = []) =>
            applyScript(
                {
                    ...applyBase,
                    nodeName: "s1",
                    installMode: "preinstalled",
                    updatedServers,
                    waitSeconds: 10,
                    bundleSha256: sha256Hex(bundle),
                },
                host.host,
            );

        /**
         * s1 installed and running as the leader; a changed main config to apply (a restart). The
         * transfer-leader responder records the live main config when it is asked (before or after
         * the swap), and then moves leadership to the server it names, or, asked without an id, to
         * s2 (Raft's pick); with `refuseNamed`, a named target is refused as Consul refuses one.
         */
        const leaderWithChange = (refuseNamed = false) => {
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
            const first = renderBundle(files());
            ok(host.run(serverApply(first), first));
            const oldMain = fs.readFileSync(host.paths.mainConfig, "utf8");
            host.respond("/v1/agent/self", agentSelf(true, "10.0.0.11:8300"), mgmt);
            host.respond("/v1/operator/raft/configuration", JSON.stringify({ Servers: raft, Index: 42 }), mgmt);
            host.respond("/v1/acl/token/self", '{"AccessorID":"a-1","Description":"Bootstrap Token"}', mgmt);
            host.respond("/v1/operator/autopilot/health", '{"Healthy":true,"FailureTolerance":1}', mgmt);
            host.set(
                "members",
                "Node  Address          Status  Type    Build   Protocol  DC   Partition  Segment\n" +
                    "s1    10.0.0.11:8301  alive   server  1.16.2  2         dc1  default    <all>\n",
            );
            for (const s of raft.filter((s) => s.Voter && !s.Leader)) {
                host.respond("/v1/status/leader", `"${s.Address}"`, { set: s.ID });
                host.respond("/v1/agent/self", agentSelf(false, s.Address), { ...mgmt, set: s.ID });
            }
            host.respondWith(
                "/v1/operator/raft/transfer-leader",
                `cp '${host.paths.mainConfig}' "$S/main-at-transfer"\n` +
                    `id=$(printf '%s' "$URL" | sed -n 's/.*[?&]id=\\([^&]*\\).*/\\1/p')\n` +
                    (refuseNamed
                        ? `if [ -n "$id" ]; then echo 'curl: (22) The requested URL returned error: 500' >&2; exit 22; fi\n`
                        : "") +
                    `switch_to "\${id:-id-2}"\necho '{"success":true}'\n`,
                { method: "POST", ...mgmt },
            );
            const bundle = renderBundle(
                files((f) => (f.path === host.paths.mainConfig ? { ...f, content: '{"changed":true}\n' } : f)),
            );
            return { bundle, oldMain };
        };
        /** Requests and service actions from the pre-restart step on, in order. */
        const handOver = (run: Run) => {
            const calls = run.calls
                .filter((c) => /^(curl|systemctl (restart|reload|stop))/.test(c))
                .map((c) => c.replace(AGENT, ""));
            return calls.slice(
                calls.indexOf("curl GET /v1/status/leader"),
                calls.indexOf("systemctl restart --no-block consul.service") + 1,
            );
        };
        const checks = (run: Run, oldMain: string) => {
            ok(run);
            // The POST went out while the old config was still live, i.e. before the swap.
            assert.strictEqual(host.read("main-at-transfer"), oldMain);
            assert.strictEqual(fs.readFileSync(host.paths.mainConfig, "utf8"), '{"changed":true}\n');
            for (const r of run.requests.filter((r) => r.url.startsWith(`${AGENT}/v1/operator/`))) {
                withManagementToken(r);
            }
            noSecrets(run);
        };

        it("to a voter the rollout already updated (never a non-voter), then restarts", () => {
            const { bundle, oldMain } = leaderWithChange();
            const run = host.run(serverApply(bundle, ["10.0.0.14", "10.0.0.13"]), bundle);
            checks(run, oldMain);
            assert.deepStrictEqual(handOver(run), [
                "curl GET /v1/status/leader",
                "curl GET /v1/agent/self",
                "curl GET /v1/operator/raft/configuration",
                "curl POST /v1/operator/raft/transfer-leader?id=id-3",
                "curl GET /v1/agent/self",
                "curl GET /v1/status/leader",
                "systemctl restart --no-block consul.service",
            ]);
            assert.deepStrictEqual(
                run.stdout.split("\n").filter((l) => / (pre-restart|compare|wait):/.test(l)),
                [
                    "s1 compare: 1 changed, action: restart",
                    "s1 pre-restart: this node is the Raft leader, transferring leadership to id-3 (already updated)",
                    "s1 pre-restart: leadership transferred to 10.0.0.13:8300",
                    "s1 wait: alive, leader 10.0.0.13:8300, autopilot healthy",
                ],
            );
        });

        it("with none updated yet, to another voter (not itself, not a non-voter)", () => {
            const { bundle, oldMain } = leaderWithChange();
            const run = host.run(serverApply(bundle), bundle);
            checks(run, oldMain);
            assert.ok(
                handOver(run).includes("curl POST /v1/operator/raft/transfer-leader?id=id-2"),
                run.calls.join("\n"),
            );
            assert.ok(
                run.stdout.includes(
                    "s1 pre-restart: this node is the Raft leader, transferring leadership to id-2 (none updated yet)\n" +
                        "s1 pre-restart: leadership transferred to 10.0.0.12:8300\n",
                ),
                run.stdout,
            );
        });

        it("a refused named transfer is retried without a target (Raft's pick) before the restart", () => {
            const { bundle, oldMain } = leaderWithChange(true);
            const run = host.run(serverApply(bundle, ["10.0.0.13"]), bundle);
            checks(run, oldMain);
            assert.deepStrictEqual(handOver(run).slice(3), [
                "curl POST /v1/operator/raft/transfer-leader?id=id-3",
                "curl POST /v1/operator/raft/transfer-leader",
                "curl GET /v1/agent/self",
                "curl GET /v1/status/leader",
                "systemctl restart --no-block consul.service",
            ]);
            assert.ok(
                run.stdout.includes(
                    "s1 pre-restart: transfer to id-3 refused (curl: (22) The requested URL returned error: 500), to any follower instead\n" +
                        "s1 pre-restart: leadership transferred to 10.0.0.12:8300\n",
                ),
                run.stdout,
            );
        });

        it("a follower restarts without asking for a transfer", () => {
            const { bundle } = leaderWithChange();
            host.respond("/v1/agent/self", agentSelf(false, "10.0.0.12:8300"), mgmt);
            host.respond("/v1/status/leader", '"10.0.0.12:8300"');
            const run = host.run(serverApply(bundle), bundle);
            ok(run);
            assert.deepStrictEqual(handOver(run), [
                "curl GET /v1/status/leader",
                "curl GET /v1/agent/self",
                "systemctl restart --no-block consul.service",
            ]);
            assert.ok(!host.has("main-at-transfer"));
            assert.doesNotMatch(run.stdout, /pre-restart/);
        });
    });

    describe("acl", () => {
        const policyJson = agentPolicyJson();
        const script = () =>
            aclScript(
                { nodeName: "s1", httpsPort: 8501, policyName: AGENT_POLICY_NAME, policyJson, waitSeconds: 5 },
                host.host,
            );
        const POLICY = `/v1/acl/policy/name/${AGENT_POLICY_NAME}`;
        /** A server with both token files, a leader, and the management token working. */
        const server = () => {
            fs.mkdirSync(path.dirname(host.paths.managementTokenFile), { recursive: true });
            fs.writeFileSync(host.paths.managementTokenFile, managementToken, { mode: 0o600 });
            fs.writeFileSync(host.paths.agentTokenFile, agentToken, { mode: 0o600 });
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
            host.respond("/v1/acl/token/self", '{"AccessorID":"a-1","Description":"Bootstrap Token"}', mgmt);
            host.respond("/v1/acl/policy", '{"ID":"pol-new"}', { method: "PUT", ...mgmt });
            host.respond("/v1/acl/policy/pol-1", '{"ID":"pol-1"}', { method: "PUT", ...mgmt });
            host.respond("/v1/acl/token", '{"AccessorID":"a-2"}', { method: "PUT", ...mgmt });
        };
        const writes = (run: Run) => run.requests.filter((r) => r.method !== "GET");

        it("a first run creates the policy, then the agent token with the SecretID from its file", () => {
            server();
            const run = host.run(script());
            ok(run);
            assert.strictEqual(
                run.stdout,
                `s1 acl: policy ${AGENT_POLICY_NAME} created\ns1 acl: agent token created\n`,
            );
            assert.deepStrictEqual(
                run.requests.map((r) => `${r.method} ${r.url.replace(AGENT, "")}`),
                [
                    "GET /v1/status/leader",
                    "GET /v1/acl/token/self",
                    `GET ${POLICY}`,
                    "PUT /v1/acl/policy",
                    "GET /v1/acl/token/self",
                    "PUT /v1/acl/token",
                ],
            );
            const [policy, token] = writes(run);
            assert.strictEqual(policy.body, policyJson);
            assert.deepStrictEqual(JSON.parse(token.body ?? ""), {
                SecretID: agentToken,
                Description: "Consul agents (consul-pulumi)",
                Policies: [{ Name: AGENT_POLICY_NAME }],
            });
            for (const r of writes(run)) withManagementToken(r);
            // The agent token was checked with itself, not the management token.
            assert.strictEqual(run.requests[4].config, `header = "X-Consul-Token: ${agentToken}"\n`);
            noSecrets(run);
            assert.deepStrictEqual(
                host.tree().filter((p) => /^\/tmp\/./.test(p)),
                [],
            );
        });

        it("a re-run updates the existing policy by its ID and leaves a working agent token alone", () => {
            server();
            host.respond(POLICY, `{"ID":"pol-1","Name":"${AGENT_POLICY_NAME}","Rules":"old"}`, mgmt);
            host.respond("/v1/acl/token/self", '{"AccessorID":"a-2"}', { token: agentToken });
            const run = host.run(script());
            ok(run);
            assert.strictEqual(run.stdout, `s1 acl: policy ${AGENT_POLICY_NAME} updated\ns1 acl: agent token exists\n`);
            assert.deepStrictEqual(
                writes(run).map((r) => `${r.method} ${r.url.replace(AGENT, "")}`),
                ["PUT /v1/acl/policy/pol-1"],
            );
            assert.strictEqual(writes(run)[0].body, policyJson);
            withManagementToken(writes(run)[0]);
            noSecrets(run);
        });
    });
});
