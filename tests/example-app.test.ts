// The app-stack side: the helper in app/ (pure functions and the StackReference wrappers) and the
// example app stack in examples/app/, run under the mocks with a mocked StackReference whose
// outputs are the ones the Consul program exports for the dev (kubernetes) and prod (vm) stacks.

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
    CA_CONFIGMAP_KEY,
    ConsulStackOutputs,
    kubernetesAppEnv,
    renderEnvironmentFile,
    vmAppEnvironment,
    vmConsulEnvironment,
} from "../app";
import { ConsulMocks, evaluateProgram, REPO_ROOT, stackFileConfig, valueOf, withOperatorHome } from "./mocks";
import { FILES } from "../components/kubernetes/manifests";
import { CA_CONFIGMAP_NAME } from "../components/agent/names";
import { DEFAULT_CONSUL_VERSION } from "../components/config/schema";

const APP_PROJECT = "consul-example-app";
const APP_DIR = path.join(REPO_ROOT, "examples", "app");

/** ConsulMocks that also answer StackReference registrations with the given stack outputs. */
class AppMocks extends ConsulMocks {
    readonly stackReferences: string[] = [];
    constructor(private readonly consulOutputs: Record<string, unknown>) {
        super();
    }
    async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
        if (args.type === "pulumi:pulumi:StackReference") {
            this.stackReferences.push(String(args.inputs.name));
            return {
                id: String(args.inputs.name),
                state: { name: args.inputs.name, outputs: this.consulOutputs, secretOutputNames: [] },
            };
        }
        return super.newResource(args);
    }
}

function forgetExample(): void {
    for (const id of Object.keys(require.cache)) {
        if (id.startsWith(APP_DIR) || id.startsWith(path.join(REPO_ROOT, "app"))) delete require.cache[id];
    }
}

async function settle(mocks: ConsulMocks): Promise<void> {
    let last = -1;
    for (let quiet = 0; quiet < 5;) {
        await new Promise((r) => setTimeout(r, 5));
        if (mocks.resources.length === last) quiet++;
        else [quiet, last] = [0, mocks.resources.length];
    }
}

/** Runs examples/app/index.ts with this config against these Consul stack outputs. */
async function runExample(
    consulOutputs: Record<string, unknown>,
    config: Record<string, string>,
): Promise<{ mocks: AppMocks; exports: Record<string, unknown> }> {
    pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${APP_PROJECT}:${k}`, v])));
    const mocks = new AppMocks(consulOutputs);
    await pulumi.runtime.setMocks(mocks, APP_PROJECT, "dev", false);
    forgetExample();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const program = require(APP_DIR) as Record<string, unknown>;
    const exports: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(program)) exports[name] = await valueOf(value);
    await settle(mocks);
    return { mocks, exports };
}

describe("app-stack helper and example", () => {
    let operator: ReturnType<typeof withOperatorHome>;
    const outputs: Record<string, Record<string, unknown>> = {};
    before(async () => {
        operator = withOperatorHome();
        // The real program's outputs, so the helper is tested against what the Consul stack exports.
        for (const stack of ["dev", "prod"]) {
            const { config, secretKeys } = stackFileConfig(stack);
            outputs[stack] = (await evaluateProgram(config, { stack, secretKeys })).outputs;
        }
    });
    after(() => operator.restore());

    it("agrees with the Consul program on the CA ConfigMap key", () => {
        assert.strictEqual(CA_CONFIGMAP_KEY, FILES.caCert);
    });

    it("gives Kubernetes apps HOST_IP first, then the agent address, CA file and TLS server name", () => {
        const env = kubernetesAppEnv(outputs.dev as unknown as ConsulStackOutputs);
        assert.deepStrictEqual(env, [
            { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
            { name: "CONSUL_HTTP_ADDR", value: "https://$(HOST_IP):8501" },
            { name: "CONSUL_CACERT", value: "/etc/consul-ca/ca.crt" },
            { name: "CONSUL_TLS_SERVER_NAME", value: "client.dc1.consul" },
        ]);
    });

    it("refuses a vm Consul stack for a pod, and a Kubernetes one for a VM app", () => {
        assert.throws(() => kubernetesAppEnv(outputs.prod as unknown as ConsulStackOutputs), /use vmAppEnvironment/);
        assert.throws(() => vmAppEnvironment(outputs.dev as unknown as ConsulStackOutputs), /only in the vm topology/);
    });

    it("gives VM apps the local agent and the host's CA bundle (our CA + Connect roots)", () => {
        const env = vmAppEnvironment(outputs.prod as unknown as ConsulStackOutputs);
        assert.deepStrictEqual(env, {
            CONSUL_HTTP_ADDR: "https://127.0.0.1:8501",
            CONSUL_CACERT: "/etc/consul.d/tls/agent-ca.pem",
        });
        assert.strictEqual(
            renderEnvironmentFile(env),
            "CONSUL_HTTP_ADDR=https://127.0.0.1:8501\nCONSUL_CACERT=/etc/consul.d/tls/agent-ca.pem\n",
        );
        assert.throws(() => renderEnvironmentFile({ A: "two words" }), /unexpected character/);
    });

    it("reads a StackReference for VM apps", async () => {
        const mocks = new AppMocks(outputs.prod);
        await pulumi.runtime.setMocks(mocks, APP_PROJECT, "dev", false);
        const env = await valueOf(vmConsulEnvironment(new pulumi.StackReference("acme/consul/prod")));
        assert.strictEqual(env.CONSUL_CACERT, "/etc/consul.d/tls/agent-ca.pem");
        assert.deepStrictEqual(mocks.stackReferences, ["acme/consul/prod"]);
    });

    describe("examples/app under the mocks", () => {
        it("deploys a container wired to its node-local agent through the consul-ca ConfigMap", async () => {
            const { mocks, exports } = await runExample(outputs.dev, { consulStack: "acme/consul/dev" });
            assert.deepStrictEqual(mocks.stackReferences, ["acme/consul/dev"]);
            const [deployment] = mocks.ofType("kubernetes:apps/v1:Deployment");
            const spec = (deployment.inputs.spec as any).template.spec; // eslint-disable-line @typescript-eslint/no-explicit-any
            assert.strictEqual((deployment.inputs.metadata as { namespace: string }).namespace, "apps");
            assert.deepStrictEqual(spec.volumes, [
                {
                    name: "consul-ca",
                    configMap: { name: CA_CONFIGMAP_NAME, items: [{ key: "ca.crt", path: "ca.crt" }] },
                },
            ]);
            const container = spec.containers[0];
            assert.deepStrictEqual(container.volumeMounts, [
                { name: "consul-ca", mountPath: "/etc/consul-ca", readOnly: true },
            ]);
            const names = (container.env as { name: string }[]).map((e) => e.name);
            assert.deepStrictEqual(names, [
                "HOST_IP",
                "CONSUL_HTTP_ADDR",
                "CONSUL_CACERT",
                "CONSUL_TLS_SERVER_NAME",
                "POD_NAME",
            ]);
            // The script shellcheck checks is the one the container runs.
            assert.deepStrictEqual(container.command, [
                "/bin/sh",
                "-c",
                fs.readFileSync(path.join(REPO_ROOT, "examples/app/start.sh"), "utf8"),
            ]);
            assert.strictEqual(container.image, `hashicorp/consul:${DEFAULT_CONSUL_VERSION}`);
            assert.strictEqual(exports.consulHttpAddr, "https://$(HOST_IP):8501");
        });

        it("takes the app's ACL token from a Secret, never as a literal", async () => {
            const { mocks } = await runExample(outputs.dev, {
                consulStack: "acme/consul/dev",
                namespace: "shop",
                tokenSecret: "shop-consul-token",
            });
            const [deployment] = mocks.ofType("kubernetes:apps/v1:Deployment");
            const env = (deployment.inputs.spec as any).template.spec.containers[0].env; // eslint-disable-line @typescript-eslint/no-explicit-any
            assert.deepStrictEqual(env[env.length - 1], {
                name: "CONSUL_HTTP_TOKEN",
                valueFrom: { secretKeyRef: { name: "shop-consul-token", key: "token" } },
            });
        });
    });
});
