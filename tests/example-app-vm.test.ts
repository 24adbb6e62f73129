// The VM app stack: the app/ helpers it uses (the app's token from the Consul stack's appTokens
// output, the environment file and the script that installs it) and examples/app-vm under the
// mocks, with a mocked StackReference whose outputs are the Consul program's for Pulumi.prod.yaml
// with consul:appTokens [web]. tests/engine/app-stack.e2e.ts runs both stacks for real.

import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
    appEnvFile,
    appTokenFrom,
    envFileScript,
    renderEnvironmentFile,
    vmAppEnvironment,
    vmAppTokenEnvironment,
    withAppToken,
} from "../app";
import type { ConsulStackOutputs } from "../app";
import { readVmAppConfig } from "../examples/app-vm/config";
import { wrapForUser } from "../components/vm/scripts";
import { ConsulMocks, evaluateProgram, REPO_ROOT, stackFileConfig, valueOf, withOperatorHome } from "./mocks";

const APP_PROJECT = "consul-example-app-vm";
const APP_DIR = path.join(REPO_ROOT, "examples", "app-vm");
const TOKEN = "0b3c4d5e-6f70-4182-9a3b-4c5d6e7f8091";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Answers StackReference registrations with the Consul outputs, appTokens secret as the engine marks it. */
class AppMocks extends ConsulMocks {
    readonly stackReferences: string[] = [];
    constructor(private readonly consulOutputs: Record<string, unknown>) {
        super();
    }
    async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
        if (args.type === "pulumi:pulumi:StackReference") {
            this.stackReferences.push(String(args.inputs.name));
            const state = { name: args.inputs.name, outputs: this.consulOutputs, secretOutputNames: ["appTokens"] };
            return { id: String(args.inputs.name), state };
        }
        return super.newResource(args);
    }
}

async function runExample(consulOutputs: Record<string, unknown>, config: Record<string, string>): Promise<AppMocks> {
    pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${APP_PROJECT}:${k}`, v])));
    const mocks = new AppMocks(consulOutputs);
    await pulumi.runtime.setMocks(mocks, APP_PROJECT, "dev", false);
    for (const id of Object.keys(require.cache)) if (id.startsWith(APP_DIR)) delete require.cache[id];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const program = require(APP_DIR) as Record<string, unknown>;
    for (const value of Object.values(program)) await valueOf(value);
    await new Promise((r) => setTimeout(r, 50));
    return mocks;
}

describe("VM app stack helper and example", () => {
    let operator: ReturnType<typeof withOperatorHome>;
    let prod: Record<string, unknown>;
    let keyFile: string;
    before(async () => {
        operator = withOperatorHome();
        const { config, secretKeys } = stackFileConfig("prod");
        const evaluated = await evaluateProgram({ ...config, appTokens: '["web"]' }, { stack: "prod", secretKeys });
        prod = evaluated.outputs;
        assert.ok(evaluated.secretOutputs.has("appTokens"), "the Consul program's appTokens output is not secret");
        keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "app-vm-")), "id");
        fs.writeFileSync(keyFile, "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n");
    });
    after(() => operator.restore());

    it("takes the app's token from the Consul stack's appTokens, or says how to add it", () => {
        assert.strictEqual(appTokenFrom({ web: TOKEN }, "web"), TOKEN);
        assert.throws(
            () => appTokenFrom({ web: TOKEN }, "api"),
            /no token for app "api" \(its appTokens output lists: web\); add it there with pulumi config set --path 'consul:appTokens\[0\]' api/,
        );
        assert.throws(() => appTokenFrom({ api: "x" }, "api"), /not a SecretID/);
        assert.throws(() => appTokenFrom({}, "constructor"), /lists: none/);
    });

    it("renders the env file: the local agent, the host's CA bundle and the token", () => {
        const env = withAppToken(vmAppEnvironment(prod as unknown as ConsulStackOutputs), TOKEN);
        assert.strictEqual(
            renderEnvironmentFile(env),
            `CONSUL_HTTP_ADDR=https://127.0.0.1:8501\nCONSUL_CACERT=/etc/consul.d/tls/agent-ca.pem\nCONSUL_HTTP_TOKEN=${TOKEN}\n`,
        );
        assert.strictEqual(appEnvFile("web"), "/etc/consul-app/web.env");
        assert.throws(() => appEnvFile("../etc/passwd"), /bad app name/);
    });

    it("installs the file from stdin, root-only, and never holds the content itself", () => {
        const script = envFileScript("install", "web");
        assert.match(script, /^#!\/bin\/sh\n/);
        assert.match(script, /readonly ENV_FILE='\/etc\/consul-app\/web\.env'\n/);
        assert.match(script, /install -d -m 0700 -o root -g root "\$ENV_DIR"/);
        assert.match(script, /chmod 0600 "\$tmp"/);
        // The shebang and a title: the file's comments stay in the file.
        assert.deepStrictEqual(
            script.split("\n").filter((l) => /^\s*#/.test(l)),
            ["#!/bin/sh", "# consul-app: install /etc/consul-app/web.env"],
        );
        assert.match(envFileScript("remove", "web"), /readonly ACTION='remove'/);
    });

    it("validates its config: every problem at once, naming key, value and fix", () => {
        assert.throws(
            () =>
                readVmAppConfig(
                    { consulStack: "consul/prod", app: "Web", host: "a b", sshPort: "0", bogus: "1" },
                    APP_PROJECT,
                    "prod",
                ),
            (err: Error) => {
                const lines = err.message
                    .split("\n")
                    .slice(1)
                    .map((l) => l.trim().replace(/ = .*?: /, " ... "));
                assert.deepStrictEqual(
                    lines.map((l) => l.split(" ... ")[0]),
                    [
                        `- ${APP_PROJECT}:bogus`,
                        `- ${APP_PROJECT}:consulStack`,
                        `- ${APP_PROJECT}:app`,
                        `- ${APP_PROJECT}:host`,
                        `- ${APP_PROJECT}:sshPort`,
                        `- ${APP_PROJECT}:sshPrivateKeyPath`,
                        `- ${APP_PROJECT}:sshHostKey`,
                    ],
                );
                assert.match(
                    err.message,
                    /consulStack = "consul\/prod": must name the Consul stack as <organization>\/<project>\/<stack>/,
                );
                assert.match(err.message, /sshHostKey = "": is required outside development stacks \(stack "prod"\)/);
                return true;
            },
        );
        const dev = readVmAppConfig(
            { consulStack: "organization/consul/dev", host: "10.0.0.21", sshPrivateKeyPath: "/k" },
            APP_PROJECT,
            "dev",
        );
        assert.deepStrictEqual(dev, {
            consulStack: "organization/consul/dev",
            app: "web",
            host: "10.0.0.21",
            sshPort: 22,
            sshUser: "root",
            sshPrivateKeyPath: "/k",
            sshHostKey: undefined,
        });
    });

    describe("examples/app-vm under the mocks", () => {
        it("sends the env file on the command's stdin as a secret, the token nowhere else", async () => {
            const mocks = await runExample(prod, {
                consulStack: "organization/consul/prod",
                host: "10.0.0.21",
                sshPrivateKeyPath: keyFile,
            });
            assert.deepStrictEqual(mocks.stackReferences, ["organization/consul/prod"]);
            const [command] = mocks.ofType("command:remote:Command");
            const token = (prod.appTokens as Record<string, string>).web;
            assert.strictEqual(
                command.inputs.stdin,
                `CONSUL_HTTP_ADDR=https://127.0.0.1:8501\nCONSUL_CACERT=/etc/consul.d/tls/agent-ca.pem\nCONSUL_HTTP_TOKEN=${token}\n`,
            );
            assert.strictEqual((command.rawInputs.stdin as Record<string, unknown>)[SECRET_SIG] !== undefined, true);
            const { stdin, ...rest } = command.inputs;
            void stdin;
            assert.ok(!JSON.stringify(rest).includes(token), "the token is in another input than stdin");
            // As root (sshUser root): sh -c with the script, no sudo.
            assert.strictEqual(command.inputs.create, wrapForUser(envFileScript("install", "web"), "root"));
            assert.match(String(command.inputs.delete), /readonly ACTION='"'"'remove'"'"'/);
        });

        it("refuses a Consul stack without a token for the app, with the fix", async () => {
            const mocks = new AppMocks({ ...prod, appTokens: {} });
            await pulumi.runtime.setMocks(mocks, APP_PROJECT, "dev", false);
            const env = vmAppTokenEnvironment(new pulumi.StackReference("organization/consul/prod"), "api");
            // Output.promise() is how the SDK itself awaits an Output; a failed apply rejects it.
            const settled = (env as unknown as { promise(): Promise<unknown> }).promise();
            await assert.rejects(settled, /no token for app "api" \(its appTokens output lists: none\)/);
        });
    });
});
