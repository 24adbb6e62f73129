import * as assert from "assert";
import { agentSecretConfig, clientAgentConfig, renderJson, serverAgentConfig } from "../../components/agent/config";
import { parseSettings } from "../../components/config";
import { AEAD_SUITES } from "../vm/fixtures";

const settings = parseSettings({}, "consul", "dev");
const tls = {
    caFile: "/etc/consul.d/tls/ca.pem",
    certFile: "/etc/consul.d/tls/server.pem",
    keyFile: "/etc/consul.d/tls/server-key.pem",
};
const server = serverAgentConfig(settings, { dataDir: "/var/lib/consul", tls, retryJoin: ["10.0.0.11", "10.0.0.12"] });
const client = clientAgentConfig(settings, {
    dataDir: "/var/lib/consul",
    tls: { caFile: tls.caFile },
    retryJoin: ["10.0.0.11"],
    autoEncryptIpSans: ["10.0.0.21"],
});

describe("agent config", () => {
    it("configures servers with the tls stanza, verifying both directions and the server hostname", () => {
        assert.deepStrictEqual(server.tls, {
            defaults: {
                ca_file: tls.caFile,
                cert_file: tls.certFile,
                key_file: tls.keyFile,
                verify_outgoing: true,
                tls_min_version: "TLSv1_2",
                tls_cipher_suites: AEAD_SUITES,
            },
            internal_rpc: { verify_incoming: true, verify_server_hostname: true },
            https: { verify_incoming: false },
            grpc: { verify_incoming: false },
        });
        for (const deprecated of [
            "verify_incoming",
            "verify_outgoing",
            "verify_server_hostname",
            "ca_file",
            "cert_file",
            "key_file",
        ]) {
            assert.ok(!(deprecated in server) && !(deprecated in client), deprecated);
        }
    });

    it("serves HTTPS on 8501 and gRPC TLS on 8503, with plain HTTP and plain gRPC off", () => {
        assert.deepStrictEqual(server.ports, {
            http: -1,
            https: 8501,
            grpc: -1,
            grpc_tls: 8503,
            dns: 8600,
            server: 8300,
            serf_lan: 8301,
            serf_wan: 8302,
        });
        assert.deepStrictEqual(client.ports, server.ports);
    });

    it("lets servers hand out auto_encrypt certificates and clients ask for them", () => {
        assert.deepStrictEqual(server.auto_encrypt, { allow_tls: true });
        assert.deepStrictEqual(client.auto_encrypt, { tls: true, ip_san: ["10.0.0.21"] });
        assert.deepStrictEqual(client.tls, {
            defaults: {
                ca_file: tls.caFile,
                verify_outgoing: true,
                tls_min_version: "TLSv1_2",
                tls_cipher_suites: AEAD_SUITES,
            },
            internal_rpc: { verify_server_hostname: true },
            https: { verify_incoming: false },
            grpc: { verify_incoming: false },
        });
        assert.deepStrictEqual(server.connect, { enabled: true });
    });

    it("sets bootstrap_expect on servers only, with retry_join on both", () => {
        assert.strictEqual(server.bootstrap_expect, 3);
        assert.strictEqual(server.server, true);
        assert.ok(!("bootstrap_expect" in client));
        assert.strictEqual(client.server, false);
        assert.deepStrictEqual(server.retry_join, ["10.0.0.11", "10.0.0.12"]);
        assert.deepStrictEqual(client.retry_join, ["10.0.0.11"]);
        assert.throws(() => serverAgentConfig(settings, { dataDir: "/d", tls, retryJoin: [] }), /needs retry_join/);
        assert.throws(
            () => serverAgentConfig(settings, { dataDir: "/d", tls: { caFile: "ca" }, retryJoin: ["a"] }),
            /certificate and key/,
        );
    });

    it("tunes Raft for production, shows the UI on servers, exports Prometheus metrics, turns the update check off", () => {
        assert.deepStrictEqual(server.performance, { raft_multiplier: 1 });
        assert.deepStrictEqual(server.ui_config, { enabled: true });
        assert.ok(!("ui_config" in client));
        assert.deepStrictEqual(server.telemetry, { prometheus_retention_time: "60s", disable_hostname: true });
        assert.strictEqual(server.disable_update_check, true);
        const quiet = serverAgentConfig(
            { ...settings, telemetry: { enabled: false, retention: "60s" } },
            { dataDir: "/d", tls, retryJoin: ["a"] },
        );
        assert.ok(!("telemetry" in quiet));
    });

    it("turns ACLs on with default deny and token persistence", () => {
        assert.deepStrictEqual(server.acl, {
            enabled: true,
            default_policy: "deny",
            down_policy: "extend-cache",
            enable_token_persistence: true,
        });
        assert.deepStrictEqual(client.acl, server.acl);
    });

    it("keeps servers in the Raft peer set on shutdown and lets clients leave", () => {
        assert.strictEqual(server.leave_on_terminate, false);
        assert.strictEqual(server.skip_leave_on_interrupt, true);
        assert.deepStrictEqual(server.autopilot, {
            cleanup_dead_servers: true,
            min_quorum: 3,
            last_contact_threshold: "200ms",
            server_stabilization_time: "10s",
        });
        assert.strictEqual(client.leave_on_terminate, true);
    });

    it("keeps every secret out of the main config and puts it in the secret fragment", () => {
        const secrets = {
            gossipKey: "c2VjcmV0LWdvc3NpcC1rZXktMzItYnl0ZXMtbG9uZyE=",
            managementToken: "11111111-2222-3333-4444-555555555555",
            agentToken: "66666666-7777-8888-9999-000000000000",
        };
        for (const config of [server, client]) {
            const text = renderJson(config);
            for (const value of Object.values(secrets)) assert.ok(!text.includes(value));
            assert.ok(!("encrypt" in config));
        }
        assert.deepStrictEqual(agentSecretConfig("server", secrets), {
            encrypt: secrets.gossipKey,
            acl: { tokens: { initial_management: secrets.managementToken, agent: secrets.agentToken } },
        });
        assert.deepStrictEqual(agentSecretConfig("client", secrets), {
            encrypt: secrets.gossipKey,
            acl: { tokens: { agent: secrets.agentToken } },
        });
        assert.deepStrictEqual(agentSecretConfig("client", { gossipKey: "k" }), { encrypt: "k" });
    });

    it("renders deterministic JSON: same settings, byte-identical output, keys sorted", () => {
        const again = serverAgentConfig(parseSettings({}, "consul", "dev"), {
            dataDir: "/var/lib/consul",
            tls,
            retryJoin: ["10.0.0.11", "10.0.0.12"],
        });
        assert.strictEqual(renderJson(again), renderJson(server));
        assert.strictEqual(
            renderJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: 3 } }),
            '{\n  "a": {\n    "c": 3,\n    "d": [\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n',
        );
        const keys = Object.keys(JSON.parse(renderJson(server)) as object);
        assert.deepStrictEqual(keys, [...keys].sort());
    });
});
