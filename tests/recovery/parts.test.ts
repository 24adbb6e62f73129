// The recovery's smaller parts: peers.json as Consul reads it, the inspection's report parsed, the
// stack config read from either source, and the SSH arguments that pin each host's key.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseSettings } from "../../components/config";
import {
    knownHostsText,
    nothingAnswered,
    parseHostReport,
    rawConfigFromPulumiJson,
    rawConfigFromStackFile,
    raftHost,
    renderPeersJson,
    sshArgs,
} from "../../components/recovery";

const A = "0b6a5d8e-1f0c-4f3e-9a55-3b1d7f0e2c41";
const B = "5c2e9f1a-7b3d-4e6f-8a90-1c2d3e4f5a6b";

describe("peers.json", () => {
    it("lists every survivor as a voter, in order, as Consul's outage-recovery format", () => {
        const text = renderPeersJson([
            { nodeId: A, raftAddress: "10.0.0.11:8300" },
            { nodeId: B, raftAddress: "[fd00::2]:8300" },
        ]);
        assert.ok(!text.includes("\n"), "one line: it travels as a script header value");
        assert.deepStrictEqual(JSON.parse(text), [
            { id: A, address: "10.0.0.11:8300", non_voter: false },
            { id: B, address: "[fd00::2]:8300", non_voter: false },
        ]);
    });

    it("refuses an empty list, a non-UUID and a repeated ID", () => {
        assert.throws(() => renderPeersJson([]), /at least one server/);
        assert.throws(() => renderPeersJson([{ nodeId: "s1", raftAddress: "10.0.0.1:8300" }]), /not a node ID/);
        assert.throws(
            () => renderPeersJson([A, A].map((nodeId) => ({ nodeId, raftAddress: "10.0.0.1:8300" }))),
            /listed twice/,
        );
    });
});

describe("inspection report", () => {
    const raft = JSON.stringify({
        Servers: [{ ID: A, Node: "s1", Address: "10.0.0.11:8300", Leader: false, ProtocolVersion: "3", Voter: true }],
        Index: 7,
    });

    it("parses the key=value lines, ignoring other output", () => {
        const r = parseHostReport(
            `noise\nactive=active\nnode_id=${A}\nraft_data=yes\npeers_json=no\napi=up\nleader=\nraft=${raft}\n`,
        );
        assert.deepStrictEqual(r, {
            active: "active",
            nodeId: A,
            raftData: true,
            peersJson: false,
            apiUp: true,
            leader: "",
            raft: [{ id: A, node: "s1", address: "10.0.0.11:8300", voter: true }],
        });
    });

    it("an API that did not answer leaves the leader unknown, not none", () => {
        const r = parseHostReport("active=failed\nraft_data=yes\npeers_json=no\napi=down\n");
        assert.strictEqual(r.leader, undefined);
        assert.strictEqual(r.nodeId, undefined);
        assert.throws(() => parseHostReport("sh: 1: curl: not found\n"), /printed no report/);
    });

    it("takes the host out of a Raft address, IPv6 included", () => {
        assert.strictEqual(raftHost("10.0.0.11:8300"), "10.0.0.11");
        assert.strictEqual(raftHost("[fd00::2]:8300"), "fd00::2");
    });
});

describe("who answers over SSH", () => {
    it("only a silent address is unreachable; a refused port, another host key or a refused login is a machine", () => {
        for (const silent of [
            "ssh: connect to host 10.0.0.12 port 22: Connection timed out",
            "ssh: connect to host 10.0.0.12 port 22: No route to host",
            "ssh: Could not resolve hostname s2.example: Name or service not known",
            "timed out",
        ]) {
            assert.ok(nothingAnswered(silent), silent);
        }
        for (const there of [
            "ssh: connect to host 10.0.0.12 port 22: Connection refused",
            "Host key verification failed.",
            "root@10.0.0.12: Permission denied (publickey).",
        ]) {
            assert.ok(!nothingAnswered(there), there);
        }
    });
});

describe("stack config for the recovery", () => {
    it("reads a Pulumi.<stack>.yaml map into what parseSettings takes, and names encrypted keys", () => {
        const doc = {
            config: {
                "consul:topology": "vm",
                "consul:serverCount": 1,
                "consul:aclEnabled": true,
                "consul:serverHosts": ["s1=10.0.0.11"],
                "consul:sshPrivateKey": { secure: "v1:abc" },
                "kubernetes:context": "other project",
            },
        };
        const c = rawConfigFromStackFile(doc, "consul");
        assert.deepStrictEqual(c.raw, {
            topology: "vm",
            serverCount: "1",
            aclEnabled: "true",
            serverHosts: '["s1=10.0.0.11"]',
        });
        assert.deepStrictEqual(c.encrypted, ["sshPrivateKey"]);
    });

    it("reads `pulumi config --json --show-secrets`, keeping which keys are secret", () => {
        const c = rawConfigFromPulumiJson(
            {
                "consul:serverHosts": { value: '["s1=10.0.0.11"]', objectValue: ["s1=10.0.0.11"], secret: false },
                "consul:sshPrivateKey": { value: "KEY", secret: true },
                "aws:region": { value: "x", secret: false },
            },
            "consul",
        );
        assert.deepStrictEqual(c.raw, { serverHosts: '["s1=10.0.0.11"]', sshPrivateKey: "KEY" });
        assert.deepStrictEqual([...c.secretKeys], ["sshPrivateKey"]);
        assert.throws(
            () => rawConfigFromPulumiJson({ "consul:sshPrivateKey": { secret: true } }, "consul"),
            /--show-secrets/,
        );
    });

    it("the result goes through the program's own parser, whose checks still apply", () => {
        const c = rawConfigFromStackFile(
            { config: { "consul:topology": "vm", "consul:serverHosts": ["s1=10.0.0.311"] } },
            "consul",
        );
        assert.throws(() => parseSettings(c.raw, "consul", "dev", {}), /"10\.0\.0\.311" is not a valid IPv4 address/);
    });
});

describe("SSH with pinned host keys", () => {
    const host = { name: "s1", address: "10.0.0.11", addressIsIp: true, sshPort: 2222 };
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEiIn8o2NnOTuPNw3f1rJl0WbI3gpbZ3Y6JqfVsEw3xD";

    it("writes known_hosts that OpenSSH finds under the node name, and refuses an unpinned host", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "recovery-kh-"));
        try {
            const file = path.join(dir, "known_hosts");
            fs.writeFileSync(file, knownHostsText({ s1: key }, [host]));
            const found = spawnSync("ssh-keygen", ["-F", "s1", "-f", file], { encoding: "utf8" });
            assert.strictEqual(found.status, 0, found.stderr);
            assert.ok(found.stdout.includes(key));
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
        assert.throws(() => knownHostsText({}, [host]), /s1 has no pinned host key/);
    });

    it("checks the key strictly against that file alone, under the node name, on the host's port", () => {
        const args = sshArgs(
            { host, user: "ops", hostKey: key, keyFile: "/k", knownHostsFile: "/kh" },
            "sh -c 'x' consul-node",
        );
        const opts = new Map<string, string>();
        for (let i = 0; i < args.length; i++) {
            if (args[i] === "-o") {
                const [k, v] = args[i + 1].split("=");
                opts.set(k, v);
            }
        }
        assert.strictEqual(opts.get("StrictHostKeyChecking"), "yes");
        assert.strictEqual(opts.get("UserKnownHostsFile"), "/kh");
        assert.strictEqual(opts.get("GlobalKnownHostsFile"), "/dev/null");
        assert.strictEqual(opts.get("HostKeyAlias"), "s1");
        assert.strictEqual(opts.get("HostKeyAlgorithms"), "ssh-ed25519");
        assert.deepStrictEqual(args.slice(-9), [
            "-i",
            "/k",
            "-p",
            "2222",
            "-l",
            "ops",
            "10.0.0.11",
            "--",
            "sh -c 'x' consul-node",
        ]);
    });
});
