// The Prometheus scrape config: its YAML reads back as the typed object (js-yaml, and YAML 1.1's
// traps such as `on:` or a numeric-looking string), the token is only referenced by file, every
// certificate is verified against the CA bundle, and the program's output for each topology.

import * as assert from "assert";
import * as fc from "fast-check";
import * as yaml from "js-yaml";
import {
    PROMETHEUS_TOKEN_FILE,
    prometheusScrapeConfig,
    renderScrapeConfig,
    renderYaml,
    SCRAPE_JOBS,
} from "../../components/metrics";
import { prometheusScrapeConfigYaml } from "../../components/cluster";
import { ConfigError, parseSettings } from "../../components/config";
import { PATHS } from "../../components/vm/paths";
import { prodStackWithHosts } from "../vm/fixtures";

const settings = { datacenter: "dc1", domain: "consul", ports: { https: 8501 }, aclEnabled: true };
const CA = "/etc/consul.d/tls/agent-ca.pem";

describe("renderYaml", () => {
    it("reads back as the value it rendered (js-yaml), for any plain data", () => {
        const key = fc.oneof(fc.string(), fc.constantFrom("on", "yes", "null", "1", "a b", "-x", "#c", "true"));
        const leaf = fc.oneof(fc.string(), fc.boolean(), fc.integer(), fc.constantFrom("on", "0x1f", "1e3", "~", ""));
        const value = fc.letrec((tie) => ({
            node: fc.oneof({ depthSize: "small" }, leaf, tie("array"), tie("object")),
            array: fc.array(tie("node"), { maxLength: 4 }),
            object: fc.dictionary(key, tie("node"), { maxKeys: 4 }),
        })).object;
        fc.assert(
            fc.property(value, (v) => {
                assert.deepStrictEqual(yaml.load(renderYaml(v)), JSON.parse(JSON.stringify(v)));
            }),
            { numRuns: 300 },
        );
    });

    it("writes block style, plain keys where YAML 1.1 reads them as strings", () => {
        assert.strictEqual(
            renderYaml({ a: ["x", { b: 1, on: true }], "a b": {}, c: [] }),
            'a:\n  - "x"\n  - b: 1\n    "on": true\n"a b": {}\nc: []\n',
        );
    });

    it("refuses what it cannot render", () => {
        assert.throws(() => renderYaml({ a: NaN }), /cannot render number NaN/);
        assert.throws(() => renderYaml({ a: null }), /cannot render object null/);
    });
});

describe("prometheusScrapeConfig", () => {
    const config = prometheusScrapeConfig({ settings, caFile: CA });

    it("two jobs: servers (the consul service, server.<dc>.<domain> verified) and clients (consul-client)", () => {
        const jobs = config.scrape_configs;
        assert.deepStrictEqual(
            jobs.map((j) => [j.job_name, j.consul_sd_configs[0].services, j.tls_config.server_name]),
            [
                [SCRAPE_JOBS.server, ["consul"], "server.dc1.consul"],
                [SCRAPE_JOBS.client, ["consul-client"], undefined],
            ],
        );
        for (const job of jobs) {
            assert.strictEqual(job.scheme, "https");
            assert.strictEqual(job.metrics_path, "/v1/agent/metrics");
            assert.deepStrictEqual(job.params, { format: ["prometheus"] });
            assert.strictEqual(job.tls_config.ca_file, CA);
            const sd = job.consul_sd_configs[0];
            assert.deepStrictEqual(
                { server: sd.server, scheme: sd.scheme, datacenter: sd.datacenter, ca: sd.tls_config.ca_file },
                { server: "127.0.0.1:8501", scheme: "https", datacenter: "dc1", ca: CA },
            );
        }
    });

    it("the token only by file, for discovery and scrapes alike; none without ACLs", () => {
        const auth = { type: "Bearer", credentials_file: PROMETHEUS_TOKEN_FILE };
        for (const job of config.scrape_configs) {
            assert.deepStrictEqual(job.authorization, auth);
            assert.deepStrictEqual(job.consul_sd_configs[0].authorization, auth);
        }
        const text = renderScrapeConfig(config);
        assert.doesNotMatch(text, /credentials:|token:|insecure_skip_verify/);
        const open = prometheusScrapeConfig({ settings: { ...settings, aclEnabled: false }, caFile: CA });
        assert.doesNotMatch(renderScrapeConfig(open), /authorization|credentials/);
    });

    it("scrapes each agent's HTTPS port at its node address (IPv6 bracketed), labelled by node", () => {
        const relabel = config.scrape_configs[0].relabel_configs;
        // Prometheus anchors relabel regexes: apply them as it does.
        const address = (a: string) => {
            let out = `${a}:8300`;
            for (const r of relabel.filter((r) => r.target_label === "__address__")) {
                const m = new RegExp(`^(?:${r.regex})$`).exec(a);
                if (m) out = r.replacement.replace("$1", m[1]);
            }
            return out;
        };
        assert.strictEqual(address("10.20.0.11"), "10.20.0.11:8501");
        assert.strictEqual(address("fd00::11"), "[fd00::11]:8501");
        assert.deepStrictEqual(
            relabel.filter((r) => r.source_labels[0] === "__meta_consul_node").map((r) => r.target_label),
            ["instance", "node"],
        );
    });

    it("renders YAML that reads back as the typed object", () => {
        assert.deepStrictEqual(yaml.load(renderScrapeConfig(config)), JSON.parse(JSON.stringify(config)));
    });
});

describe("the prometheusScrapeConfig output", () => {
    const parse = (raw: Record<string, string>) => parseSettings(raw, "consul", "prod", { preview: true });

    it("vm: the scrape config with the clients' CA bundle; empty with telemetry off or on Kubernetes", () => {
        const vm = parse(prodStackWithHosts(3, 2));
        const text = prometheusScrapeConfigYaml(vm);
        const loaded = yaml.load(text) as { scrape_configs: { tls_config: { ca_file: string } }[] };
        assert.strictEqual(loaded.scrape_configs[0].tls_config.ca_file, PATHS.agentCaBundle);
        assert.strictEqual(prometheusScrapeConfigYaml({ ...vm, telemetry: { enabled: false, retention: "60s" } }), "");
        assert.strictEqual(prometheusScrapeConfigYaml({ ...vm, topology: "kubernetes" }), "");
    });
});

describe("clientSelfRegister on VM client hosts", () => {
    const parse = (raw: Record<string, string>) => parseSettings(raw, "consul", "prod", { preview: true });

    it("is read for the vm topology (default true) and refused with one message when not a boolean", () => {
        assert.strictEqual(parse(prodStackWithHosts(3, 2)).vm?.clientSelfRegister, true);
        assert.strictEqual(
            parse({ ...prodStackWithHosts(3, 2), clientSelfRegister: "false" }).vm?.clientSelfRegister,
            false,
        );
        assert.throws(
            () => parse({ ...prodStackWithHosts(3, 2), clientSelfRegister: "maybe" }),
            (err: unknown) =>
                err instanceof ConfigError &&
                err.problems.length === 1 &&
                /^consul:clientSelfRegister = "maybe": .*true or false/.test(err.problems[0]),
        );
    });
});
