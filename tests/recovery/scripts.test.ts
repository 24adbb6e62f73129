// The recovery's host scripts, rendered as sent and run on the fake host (tests/vm/fake-host.ts):
// the inspection reads and changes nothing, sends the token only on curl's stdin; the phases stop,
// write peers.json (consul:consul 0640, only while the agent is stopped), start and join.

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { inspectScript, parseHostReport, recoverScript, RecoverScriptParams } from "../../components/recovery";
import { FakeHost } from "../vm/fake-host";
import { parameters, shellcheck } from "../vm/script-cases";

const ID = "0b6a5d8e-1f0c-4f3e-9a55-3b1d7f0e2c41";
const TOKEN = "6f1c3d2e-0000-4000-8000-00000000abcd";
const RAFT = JSON.stringify({
    Servers: [{ ID, Node: "s1", Address: "10.0.0.11:8300", Leader: false, ProtocolVersion: "3", Voter: true }],
    Index: 9,
});
const PEERS = JSON.stringify([{ id: ID, address: "10.0.0.11:8300", non_voter: false }]);
const base: RecoverScriptParams = {
    nodeName: "s1",
    httpsPort: 8501,
    phase: "write",
    peersJson: PEERS,
    joinAddress: "10.0.0.11:8301",
    waitSeconds: 5,
};

describe("recovery host scripts", () => {
    let host: FakeHost;
    beforeEach(() => {
        host = new FakeHost();
        fs.mkdirSync(path.join(host.paths.dataDir, "raft"), { recursive: true });
        fs.writeFileSync(path.join(host.paths.dataDir, "node-id"), ID);
        fs.mkdirSync(host.paths.tokenDir, { recursive: true });
        fs.writeFileSync(host.paths.managementTokenFile, TOKEN);
        host.respond("/v1/status/leader", '""');
        host.respond("/v1/operator/raft/configuration", RAFT, { token: TOKEN });
    });
    afterEach(() => host.remove());

    it("pass shellcheck as rendered, every phase", () => {
        const scripts = [inspectScript({ nodeName: "s1", httpsPort: 8501 })];
        for (const phase of ["stop", "write", "unwrite", "start", "join", "wait"] as const) {
            scripts.push(recoverScript({ ...base, phase }));
        }
        for (const script of scripts) {
            const r = shellcheck(script);
            assert.strictEqual(r.status, 0, r.output);
        }
    });

    it("inspect reports node ID, Raft data, no leader and the server's own Raft configuration, and touches nothing", () => {
        const before = host.tree();
        const r = host.run(inspectScript({ nodeName: "s1", httpsPort: 8501 }, host.host));
        assert.strictEqual(r.status, 0, r.stderr);
        const report = parseHostReport(r.stdout);
        assert.strictEqual(report.nodeId, ID);
        assert.strictEqual(report.raftData, true);
        assert.strictEqual(report.leader, "");
        assert.deepStrictEqual(report.raft, [{ id: ID, node: "s1", address: "10.0.0.11:8300", voter: true }]);
        assert.deepStrictEqual(host.tree(), before);
        assert.ok(!r.calls.some((c) => /^systemctl (stop|start|restart)/.test(c)), r.calls.join("\n"));
        const raftRequest = r.requests.find((q) => q.url.includes("/v1/operator/raft/configuration"));
        assert.ok(raftRequest, "the Raft configuration was not asked for");
        assert.match(raftRequest.url, /\?stale$/, "without ?stale a leaderless server answers nothing");
        assert.ok(raftRequest.config.includes(TOKEN), "the token was not sent");
        assert.ok(!raftRequest.argv.join(" ").includes(TOKEN), "the token is on curl's command line");
        assert.ok(!r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN), "the token was printed");
    });

    it("inspect without a node-id file or an answering agent says so", () => {
        fs.rmSync(path.join(host.paths.dataDir, "node-id"));
        host.respondWith("/v1/status/leader", "exit 7\n");
        const report = parseHostReport(host.run(inspectScript({ nodeName: "s1", httpsPort: 8501 }, host.host)).stdout);
        assert.strictEqual(report.nodeId, undefined);
        assert.strictEqual(report.apiUp, false);
        assert.strictEqual(report.raft, undefined);
    });

    it("write puts peers.json in raft/, consul's, mode 0640, only while the agent is stopped", () => {
        const file = path.join(host.paths.dataDir, "raft", "peers.json");
        host.set("active");
        const refused = host.run(recoverScript(base, host.host));
        assert.strictEqual(refused.status, 1);
        assert.match(
            refused.stderr,
            /s1 write: FAILED: consul is running; it must be stopped before peers.json is written/,
        );
        assert.ok(!fs.existsSync(file));

        const stop = host.run(recoverScript({ ...base, phase: "stop" }, host.host));
        assert.strictEqual(stop.status, 0, stop.stderr);
        assert.ok(stop.calls.includes("systemctl stop consul"));
        const r = host.run(recoverScript(base, host.host));
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(fs.readFileSync(file, "utf8"), PEERS + "\n");
        assert.strictEqual(fs.statSync(file).mode & 0o777, 0o640);
        assert.ok(
            r.calls.some((c) => /^chown consul:consul .*peers\.json\.new$/.test(c)),
            r.calls.join("\n"),
        );
        assert.deepStrictEqual(parameters(recoverScript(base)).header.get("PEERS_JSON"), PEERS);

        const undo = host.run(recoverScript({ ...base, phase: "unwrite" }, host.host));
        assert.strictEqual(undo.status, 0, undo.stderr);
        assert.ok(!fs.existsSync(file));
    });

    it("write refuses a host without Raft data", () => {
        fs.rmSync(path.join(host.paths.dataDir, "raft"), { recursive: true });
        const r = host.run(recoverScript(base, host.host));
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /has no Raft data to recover/);
    });

    it("start starts the unit without blocking and waits for its API; join joins its own address (READY for a Type=notify unit)", () => {
        // The installed binary is the fake host's consul stub.
        fs.symlinkSync(path.join(host.host.toolPath, "consul"), host.paths.binary);
        const r = host.run(recoverScript({ ...base, phase: "start" }, host.host));
        assert.strictEqual(r.status, 0, r.stderr);
        assert.ok(r.calls.includes("systemctl start --no-block consul"), r.calls.join("\n"));
        assert.ok(
            r.requests.some((q) => q.url.endsWith("/v1/status/leader")),
            "the API was not waited for",
        );
        assert.ok(!r.calls.some((c) => c.startsWith("consul join")), "start joined before every survivor is up");
        const j = host.run(recoverScript({ ...base, phase: "join" }, host.host));
        assert.strictEqual(j.status, 0, j.stderr);
        assert.ok(j.calls.includes("consul join 10.0.0.11:8301"), j.calls.join("\n"));
        assert.ok(
            j.calls.includes(
                `consul-env https://127.0.0.1:8501 ${host.paths.caFile} ${host.paths.managementTokenFile}`,
            ),
        );
    });

    it("wait fails after its time-out when no leader comes", () => {
        const r = host.run(recoverScript({ ...base, phase: "wait", waitSeconds: 1 }, host.host));
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /s1 wait: FAILED: no leader within 1s/);
        host.respond("/v1/status/leader", '"10.0.0.11:8300"');
        const ok = host.run(recoverScript({ ...base, phase: "wait" }, host.host));
        assert.strictEqual(ok.status, 0, ok.stderr);
        assert.match(ok.stdout, /^leader=10\.0\.0\.11:8300$/m);
    });
});
