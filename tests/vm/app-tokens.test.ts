// consul:appTokens on the VM path, under the mocks: one ACL step per app on the ACL step's server,
// after the agent ACL step, its SecretID on stdin as a secret and nowhere else, exported in the
// secret output appTokens; and a stack without the key registers nothing new.

import * as assert from "assert";
import { evaluateProgram, EvaluatedStack, stackFileConfig, withOperatorHome } from "../mocks";
import { appTokenAccessorId } from "../../components/security/app-policy";

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

describe("app tokens on the VM path", () => {
    let operator: ReturnType<typeof withOperatorHome>;
    let withApps: EvaluatedStack;
    let without: EvaluatedStack;
    before(async () => {
        operator = withOperatorHome();
        const { config, secretKeys } = stackFileConfig("prod");
        without = await evaluateProgram(config, { stack: "prod", secretKeys });
        withApps = await evaluateProgram({ ...config, appTokens: '["web","api"]' }, { stack: "prod", secretKeys });
    });
    after(() => operator.restore());

    it("registers one ACL step per app, after the agent ACL step, on the same server", () => {
        const commands = withApps.mocks.ofType("command:remote:Command");
        const acl = commands.find((c) => c.name === "consul-vm-acl");
        assert.ok(acl, commands.map((c) => c.name).join(", "));
        for (const app of ["api", "web"]) {
            const step = commands.find((c) => c.name === `consul-vm-app-token-${app}`);
            assert.ok(step, `no ACL step for ${app}`);
            assert.deepStrictEqual(step.inputs.connection, acl.inputs.connection);
            assert.ok(
                step.dependencies.some((urn) => urn.endsWith("::consul-vm-acl")),
                step.dependencies.join(", "),
            );
            assert.match(String(step.inputs.create), new RegExp(`ACCESSOR_ID='"'"'${appTokenAccessorId(app)}'"'"'`));
            assert.match(String(step.inputs.create), new RegExp(`POLICY_NAME='"'"'consul-app-${app}'"'"'`));
        }
    });

    it("sends each SecretID on stdin as a secret, exports them in the secret output appTokens, nowhere else", () => {
        const tokens = withApps.outputs.appTokens as Record<string, string>;
        assert.deepStrictEqual(Object.keys(tokens).sort(), ["api", "web"]);
        assert.ok(withApps.secretOutputs.has("appTokens"));
        assert.notStrictEqual(tokens.web, tokens.api);
        for (const app of ["api", "web"]) {
            const [step] = withApps.mocks.resources.filter((r) => r.name === `consul-vm-app-token-${app}`);
            assert.strictEqual(step.inputs.stdin, tokens[app]);
            assert.ok((step.rawInputs.stdin as Record<string, unknown>)[SECRET_SIG], "stdin is not a secret");
            const others = withApps.mocks.resources
                .filter((r) => r !== step && r.name !== `consul-vm-app-tokens-${app}`)
                .filter((r) => JSON.stringify(r.inputs).includes(tokens[app]));
            assert.deepStrictEqual(
                others.map((r) => r.name),
                [],
                `${app}'s token is in other resources' inputs`,
            );
        }
    });

    it("a stack without appTokens registers nothing new and exports an empty secret appTokens", () => {
        const names = without.mocks.resources.map((r) => r.name);
        assert.deepStrictEqual(
            names.filter((n) => /app-token/.test(n)),
            [],
        );
        assert.deepStrictEqual(without.outputs.appTokens, {});
        assert.ok(without.secretOutputs.has("appTokens"));
        const extra = withApps.mocks.resources.map((r) => r.name).filter((n) => !names.includes(n));
        assert.deepStrictEqual(extra.sort(), [
            "consul-vm-app-token-api",
            "consul-vm-app-token-web",
            "consul-vm-app-tokens",
            "consul-vm-app-tokens-api",
            "consul-vm-app-tokens-web",
        ]);
    });
});
