// Metrics on the VM path: the ACL script upserts the metrics policy and creates the token with the
// SecretID from stdin (no host keeps it), on a fake host whose stub curl answers as Consul does; and
// under the mocks, the program's metrics ACL step (after the agent's, on server 1, the token on
// secret stdin), the client hosts' self-registration, the outputs, and a no-change re-run that runs
// nothing.

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { CLIENT_SELF_SERVICE } from "../../components/agent";
import { METRICS_POLICY_NAME, metricsPolicyBody, tokenFromSeed } from "../../components/security";
import { aclScript } from "../../components/vm/acl-steps";
import { PATHS } from "../../components/vm/paths";
import { COMMAND_TYPE, diffCommands } from "../command-diff";
import { ConsulMocks, EvaluatedStack, evaluateProgram, RecordedResource, withOperatorHome } from "../mocks";
import { CurlRequest, FakeHost, Run } from "./fake-host";
import { prodStackWithHosts, sampleMaterial, withPinnedKeys } from "./fixtures";

const METRICS_TOKEN = "6f1c2a4e-9b3d-4c5e-8f7a-1b2c3d4e5f60";

describe("the metrics ACL step on a fake host (token on stdin)", function () {
    this.timeout(60_000);
    const managementToken = String(sampleMaterial().managementToken);
    const AGENT = "https://127.0.0.1:8501";
    const POLICY = `/v1/acl/policy/name/${METRICS_POLICY_NAME}`;
    let host: FakeHost;
    beforeEach(() => {
        host = new FakeHost();
        fs.mkdirSync(path.dirname(host.paths.managementTokenFile), { recursive: true });
        fs.writeFileSync(host.paths.managementTokenFile, managementToken, { mode: 0o600 });
        host.respond("/v1/status/leader", '"10.0.0.11:8300"');
        host.respond("/v1/acl/token/self", '{"AccessorID":"a-1"}', { token: managementToken });
        host.respond("/v1/acl/policy", '{"ID":"pol-new"}', { method: "PUT", token: managementToken });
        host.respond("/v1/acl/token", '{"AccessorID":"a-3"}', { method: "PUT", token: managementToken });
    });
    afterEach(() => host.remove());
    const script = () =>
        aclScript(
            {
                nodeName: "s1",
                httpsPort: 8501,
                policyName: METRICS_POLICY_NAME,
                policyJson: metricsPolicyBody(),
                waitSeconds: 5,
                token: "metrics",
            },
            host.host,
        );
    const writes = (run: Run) => run.requests.filter((r: CurlRequest) => r.method !== "GET");

    it("creates the policy, then the token with the SecretID read from stdin; prints and passes on no secret", () => {
        const run = host.run(script(), METRICS_TOKEN + "\n");
        assert.strictEqual(run.status, 0, run.stderr);
        assert.strictEqual(
            run.stdout,
            `s1 acl: policy ${METRICS_POLICY_NAME} created\ns1 acl: metrics token created\n`,
        );
        const [policy, token] = writes(run);
        assert.strictEqual(policy.body, metricsPolicyBody());
        assert.deepStrictEqual(JSON.parse(token.body ?? ""), {
            SecretID: METRICS_TOKEN,
            Description: "Prometheus metrics (consul-pulumi)",
            Policies: [{ Name: METRICS_POLICY_NAME }],
        });
        // The token was looked up with itself (it did not exist), as the header curl read on stdin.
        const self = run.requests.filter((r) => r.url === `${AGENT}/v1/acl/token/self`);
        assert.strictEqual(self[1].config, `header = "X-Consul-Token: ${METRICS_TOKEN}"\n`);
        const seen = [run.stdout, run.stderr, ...run.calls, ...run.requests.flatMap((r) => r.argv)].join("\n");
        assert.ok(!seen.includes(METRICS_TOKEN) && !seen.includes(managementToken), "a secret was printed");
        // The token rests on no file of the host: the work directory is gone.
        assert.deepStrictEqual(
            host.tree().filter((p) => /^\/tmp\/./.test(p)),
            [],
        );
        assert.ok(!fs.existsSync(host.paths.tokenDir + "/metrics"));
    });

    it("a re-run updates the policy by its ID and leaves a working token alone", () => {
        host.respond(POLICY, `{"ID":"pol-9","Name":"${METRICS_POLICY_NAME}","Rules":"old"}`, {
            token: managementToken,
        });
        host.respond("/v1/acl/policy/pol-9", '{"ID":"pol-9"}', { method: "PUT", token: managementToken });
        host.respond("/v1/acl/token/self", '{"AccessorID":"a-3"}', { token: METRICS_TOKEN });
        const run = host.run(script(), METRICS_TOKEN);
        assert.strictEqual(run.status, 0, run.stderr);
        assert.strictEqual(run.stdout, `s1 acl: policy ${METRICS_POLICY_NAME} updated\ns1 acl: metrics token exists\n`);
        assert.deepStrictEqual(
            writes(run).map((r) => `${r.method} ${r.url.replace(AGENT, "")}`),
            ["PUT /v1/acl/policy/pol-9"],
        );
    });

    it("refuses stdin that holds no UUID, before any request", () => {
        const run = host.run(script(), "not-a-token\n");
        assert.notStrictEqual(run.status, 0);
        assert.match(run.stdout + run.stderr, /s1 acl: FAILED: stdin does not hold a token SecretID \(a UUID\)/);
        assert.deepStrictEqual(run.requests, []);
    });
});

describe("metrics in the program, under mocks", function () {
    this.timeout(120_000);
    let operator: ReturnType<typeof withOperatorHome>;
    let on: EvaluatedStack;
    const commands = (r: EvaluatedStack) => r.mocks.ofType(COMMAND_TYPE);
    const byName = (r: EvaluatedStack, name: string) => commands(r).find((c) => c.name === name) as RecordedResource;
    const bundleFile = (c: RecordedResource, file: string): string => {
        const line = String(c.inputs.stdin)
            .split("\n")
            .find((l) => l.startsWith(`${file} `));
        assert.ok(line, `${c.name} has no ${file}`);
        return Buffer.from(line.split(" ").pop() as string, "base64").toString("utf8");
    };
    before(async () => {
        operator = withOperatorHome();
        on = await evaluateProgram(prodStackWithHosts(3, 2), { stack: "prod" });
    });
    after(() => operator.restore());

    it("one metrics ACL step on server 1, after the agent's; the token only on its secret stdin", () => {
        const step = byName(on, "consul-vm-metrics-acl");
        assert.ok(step, "the metrics ACL step");
        assert.ok(step.dependencies.some((urn) => urn.endsWith("::consul-vm-acl")));
        assert.strictEqual((step.inputs.connection as { host: string }).host, "10.20.0.11");
        assert.ok(String(step.inputs.create).includes("TOKEN_NAME='\"'\"'metrics'\"'\"'"));
        assert.ok(String(step.inputs.create).includes("TOKEN_FILE='\"'\"''\"'\"'"));
        const seed = on.mocks
            .ofType("random:index/randomPassword:RandomPassword")
            .find((r) => r.name.includes("metrics-token"));
        assert.ok(seed, "the metrics token's seed");
        const token = tokenFromSeed(String(seed.state.result));
        assert.strictEqual(step.inputs.stdin, token);
        assert.strictEqual(on.outputs.metricsToken, token);
        assert.ok(on.secretOutputs.has("metricsToken"));
        // In no bundle: no host keeps it.
        for (const c of commands(on).filter((c) => c.name.endsWith("-agent"))) {
            assert.ok(!String(c.inputs.stdin).includes(Buffer.from(token).toString("base64").slice(0, 24)), c.name);
        }
    });

    it("client hosts register consul-client with the agent token; servers do not", () => {
        for (const c of commands(on).filter((c) => c.name.endsWith("-agent"))) {
            const main = JSON.parse(bundleFile(c, PATHS.mainConfig)) as { services?: { name: string; port: number }[] };
            const secrets = JSON.parse(bundleFile(c, PATHS.secretConfig)) as {
                acl: { tokens: Record<string, string> };
            };
            if (c.name.includes("-client-")) {
                assert.deepStrictEqual(
                    main.services?.map((s) => [s.name, s.port]),
                    [[CLIENT_SELF_SERVICE, 8501]],
                );
                assert.strictEqual(secrets.acl.tokens.config_file_service_registration, secrets.acl.tokens.agent);
            } else {
                assert.strictEqual(main.services, undefined, c.name);
                assert.strictEqual(secrets.acl.tokens.config_file_service_registration, undefined);
            }
        }
    });

    it("clientSelfRegister false: no service, no registration token", async () => {
        const off = await evaluateProgram(
            { ...prodStackWithHosts(3, 2), clientSelfRegister: "false" },
            { stack: "prod" },
        );
        const client = byName(off, "consul-vm-client-app-1-agent");
        assert.ok(!bundleFile(client, PATHS.mainConfig).includes('"services"'));
        assert.ok(!bundleFile(client, PATHS.secretConfig).includes("config_file_service_registration"));
    });

    it("telemetry off: no metrics token, step or scrape config; ACLs off: a scrape config without a token", async () => {
        const quiet = await evaluateProgram(
            { ...prodStackWithHosts(3, 2), telemetryEnabled: "false" },
            { stack: "prod" },
        );
        assert.strictEqual(byName(quiet, "consul-vm-metrics-acl"), undefined);
        assert.strictEqual(quiet.mocks.ofType("consul:index:MetricsToken").length, 0);
        assert.strictEqual(quiet.outputs.prometheusScrapeConfig, "");
        const open = await evaluateProgram(
            { ...prodStackWithHosts(3, 2), aclEnabled: "false", aclDefaultPolicy: "allow" },
            { stack: "dev" },
        );
        assert.strictEqual(byName(open, "consul-vm-metrics-acl"), undefined);
        assert.match(String(open.outputs.prometheusScrapeConfig), /consul_sd_configs/);
        assert.doesNotMatch(String(open.outputs.prometheusScrapeConfig), /authorization/);
    });

    it("hybrid (clients are pods, which this scrape config does not cover): no metrics token, step or scrape config", async () => {
        const hybrid = await evaluateProgram(
            withPinnedKeys({
                topology: "hybrid",
                serverHosts: JSON.stringify(["s1=10.20.0.11", "s2=10.20.0.12", "s3=10.20.0.13"]),
                sshPrivateKeyPath: "~/.ssh/consul_ed25519",
            }),
            { stack: "prod" },
        );
        assert.ok(byName(hybrid, "consul-vm-acl"), "the agents' ACL step");
        assert.strictEqual(byName(hybrid, "consul-vm-metrics-acl"), undefined);
        assert.strictEqual(hybrid.mocks.ofType("consul:index:MetricsToken").length, 0);
        assert.strictEqual(hybrid.outputs.prometheusScrapeConfig, "");
    });

    it("a second deploy with no change runs nothing (no SSH session)", async () => {
        const again = await evaluateProgram(prodStackWithHosts(3, 2), {
            stack: "prod",
            mocks: new ConsulMocks(on.mocks),
        });
        assert.deepStrictEqual(
            diffCommands(on.mocks.resources, again.mocks.resources).filter((r) => r.op !== "none"),
            [],
        );
    });
});
