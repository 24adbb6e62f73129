// Every Pulumi.<stack>.yaml in the repo is evaluated as written, under the mocks.

import * as assert from "assert";
import * as fs from "fs";
import { configSchema } from "../components/config";
import { ConsulMocks, EvaluatedStack, evaluateProgram, REPO_ROOT, stackFileConfig, withOperatorHome } from "./mocks";

/**
 * Pulumi.yaml's declared defaults as the real engine hands them to the program: as values, strings
 * as they are and the rest as JSON. (The mocks pass only what the stack file sets.)
 */
const declaredDefaults = Object.fromEntries(
    Object.entries(configSchema)
        .filter(([, spec]) => "default" in spec)
        .map(([key, spec]) => {
            const value = (spec as { default: unknown }).default;
            return [key, typeof value === "string" ? value : JSON.stringify(value)];
        }),
);

const stackFiles = fs
    .readdirSync(REPO_ROOT)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();

const SECRET_OUTPUTS = ["gossipKey", "aclManagementToken", "cliCertPem", "cliKeyPem", "appTokens", "metricsToken"];

describe("stack files", () => {
    let operator: ReturnType<typeof withOperatorHome>;
    before(() => (operator = withOperatorHome()));
    after(() => operator.restore());

    it("include dev (kubernetes) and prod (vm)", () => {
        assert.ok(stackFiles.includes("dev") && stackFiles.includes("prod"), stackFiles.join(","));
        assert.strictEqual(stackFileConfig("dev").config.topology, "kubernetes");
        assert.strictEqual(stackFileConfig("prod").config.topology, "vm");
    });

    for (const stack of stackFiles) {
        describe(`Pulumi.${stack}.yaml`, () => {
            let result: EvaluatedStack;
            before(async () => {
                const { config, secretKeys } = stackFileConfig(stack);
                result = await evaluateProgram(config, { stack, secretKeys });
            });

            it("evaluates with Pulumi.yaml's declared defaults passed as values, as the real engine passes them", async () => {
                const { config, secretKeys } = stackFileConfig(stack);
                const withDefaults = await evaluateProgram({ ...declaredDefaults, ...config }, { stack, secretKeys });
                assert.deepStrictEqual(
                    withDefaults.mocks.resources.map((r) => r.name).sort(),
                    result.mocks.resources.map((r) => r.name).sort(),
                );
            });

            it("evaluates and exports the documented outputs", () => {
                for (const name of [
                    "consulHttpAddr",
                    "caCertPem",
                    "datacenter",
                    "domain",
                    "serverAddresses",
                    "prometheusScrapeConfig",
                    ...SECRET_OUTPUTS,
                ]) {
                    assert.ok(result.outputs[name] !== undefined, `missing output ${name}`);
                }
                assert.match(String(result.outputs.caCertPem), /^-----BEGIN CERTIFICATE-----/);
            });

            it("marks the gossip key, ACL token and CLI credentials as secret outputs", () => {
                for (const name of SECRET_OUTPUTS) assert.ok(result.secretOutputs.has(name), `${name} is not secret`);
            });

            it("puts no secret value in a plain output", () => {
                const secretValues = [
                    ...SECRET_OUTPUTS.map((n) => String(result.outputs[n])),
                    ...result.mocks.ofType("tls:index/privateKey:PrivateKey").map((k) => String(k.state.privateKeyPem)),
                ].filter((v) => v.length > 8);
                for (const [name, value] of Object.entries(result.outputs)) {
                    if (result.secretOutputs.has(name)) continue;
                    const text = JSON.stringify(value);
                    for (const secret of secretValues) {
                        assert.ok(!text.includes(secret), `${name} leaks a secret`);
                    }
                }
            });

            it("uses the CA private key only as an input of the certificate signers", () => {
                const caKey = result.mocks.byName("consul-pki-ca-key").state.privateKeyPem as string;
                const users = result.mocks.resources.filter((r) =>
                    JSON.stringify(r.inputs).includes(JSON.stringify(caKey)),
                );
                const types = new Set(users.map((r) => r.type));
                assert.deepStrictEqual([...types].sort(), [
                    "tls:index/locallySignedCert:LocallySignedCert",
                    "tls:index/selfSignedCert:SelfSignedCert",
                ]);
            });
        });
    }

    it("a bad value fails before any resource is registered", async () => {
        const { config } = stackFileConfig("prod");
        const mocks = new ConsulMocks();
        await assert.rejects(
            evaluateProgram({ ...config, serverCount: "4" }, { stack: "prod", mocks }),
            // The program's modules are loaded afresh per evaluation, so compare by name, not class.
            (err: unknown) =>
                (err as Error).name === "ConfigError" && /consul:serverCount = 4/.test((err as Error).message),
        );
        assert.strictEqual(mocks.resources.length, 0);
    });

    it("the prod stack previews with no SSH key file (as a pull-request check does), and refuses to deploy without it", async () => {
        const { config, secretKeys } = stackFileConfig("prod");
        fs.rmSync(`${operator.home}/.ssh/consul_ed25519`);
        try {
            const preview = await evaluateProgram(config, { stack: "prod", secretKeys, preview: true });
            const agents = preview.mocks.resources.filter((r) => r.type === "command:remote:Command");
            assert.strictEqual(
                agents.length,
                9,
                "every host's step, the two ACL steps (agents, metrics) and the two keyring steps are previewed",
            );
            await assert.rejects(
                evaluateProgram(config, { stack: "prod", secretKeys, mocks: new ConsulMocks() }),
                (err: unknown) =>
                    (err as Error).name === "ConfigError" &&
                    /consul:sshPrivateKeyPath = "~\/\.ssh\/consul_ed25519": no such file/.test((err as Error).message),
            );
        } finally {
            operator.restore();
            operator = withOperatorHome();
        }
    });
});
