// The config-change steps of docs/runbooks/*.md, run under the mocks as a "second pulumi up": the
// first evaluation's state is kept for unchanged inputs (ConsulMocks(previous)), so the set of
// resources whose inputs change is what `pulumi preview` would show as updates or replacements.

import * as assert from "assert";
import "reflect-metadata"; // before @peculiar/x509, which needs it
import * as x509 from "@peculiar/x509";
import {
    ConsulMocks,
    EvaluatedStack,
    evaluateProgram,
    RecordedResource,
    stackFileConfig,
    withOperatorHome,
} from "./mocks";

type Config = Record<string, string>;

/** Names of the resources whose inputs differ from the previous evaluation (or that are new). */
function changed(before: EvaluatedStack, after: EvaluatedStack): string[] {
    const key = (r: RecordedResource) => `${r.type}::${r.name}`;
    const previous = new Map(before.mocks.resources.map((r) => [key(r), JSON.stringify(r.inputs)]));
    return after.mocks.resources
        .filter((r) => previous.get(key(r)) !== JSON.stringify(r.inputs))
        .map((r) => r.name)
        .sort();
}

async function upTwice(
    stack: string,
    change: Config,
    keep: (r: RecordedResource) => boolean = () => true,
): Promise<{ before: EvaluatedStack; after: EvaluatedStack }> {
    const { config, secretKeys } = stackFileConfig(stack);
    const before = await evaluateProgram(config, { stack, secretKeys });
    // `keep` drops resources from the kept state, as `pulumi up --replace <urn>` does.
    const previous = new ConsulMocks();
    previous.resources.push(...before.mocks.resources.filter(keep));
    const after = await evaluateProgram(
        { ...config, ...change },
        { stack, secretKeys, mocks: new ConsulMocks(previous) },
    );
    return { before, after };
}

const state = (stack: EvaluatedStack, name: string) => stack.mocks.byName(name).state;
const inputsOf = (stack: EvaluatedStack, name: string) => stack.mocks.byName(name).inputs as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("runbooks (config changes under the mocks)", () => {
    let operator: ReturnType<typeof withOperatorHome>;
    before(() => (operator = withOperatorHome()));
    after(() => operator.restore());

    it("an unchanged second pulumi up changes nothing (the baseline the other cases rely on)", async () => {
        const { before, after } = await upTwice("dev", {});
        assert.deepStrictEqual(changed(before, after), []);
    });

    describe("rotate-gossip-key.md", () => {
        it("Kubernetes: a new keeper replaces only the key seed and what carries the key", async () => {
            const { before, after } = await upTwice("dev", { gossipKeyKeeper: "2" });
            assert.deepStrictEqual(changed(before, after), [
                "consul-clients-daemonset", // checksum annotation: the agents roll
                "consul-clients-secret-config",
                "consul-gossip-seed",
                "consul-servers-secret-config",
                "consul-servers-statefulset",
            ]);
            assert.notStrictEqual(after.outputs.gossipKey, before.outputs.gossipKey);
            const fragment = JSON.parse(
                String(inputsOf(after, "consul-servers-secret-config").stringData["secret.json"]),
            );
            assert.strictEqual(fragment.encrypt, after.outputs.gossipKey);
        });

        it("VMs: the keyring steps and every host's gossip.json change, nothing else", async () => {
            const { before, after } = await upTwice("prod", { gossipKeyKeeper: "2" });
            const names = changed(before, after);
            assert.ok(names.includes("consul-gossip-seed"));
            const others = names.filter((n) => n !== "consul-gossip-seed");
            const agents = after.mocks.ofType("command:remote:Command").filter((r) => r.name.endsWith("-agent"));
            assert.deepStrictEqual(
                others,
                [...agents.map((r) => r.name), "consul-vm-keyring-finish", "consul-vm-keyring-install"].sort(),
            );
            assert.strictEqual(agents.length, 5);
            // In each host's bundle only the key's own file differs: no restart-worthy change.
            for (const agent of agents) {
                const files = (stack: EvaluatedStack) =>
                    new Map(
                        String(inputsOf(stack, agent.name).stdin)
                            .trim()
                            .split("\n")
                            .map((line) => [line.split(" ")[0], line] as const),
                    );
                const was = files(before);
                const differs = [...files(after)].filter(([path, line]) => was.get(path) !== line).map(([p]) => p);
                assert.deepStrictEqual(differs, ["/etc/consul.d/gossip.json"], agent.name);
            }
        });
    });

    describe("certificates.md", () => {
        it("a new CA validity re-issues the CA certificate and every certificate (same CA key)", async () => {
            const { before, after } = await upTwice("dev", { caValidityHours: "87600" });
            const names = changed(before, after);
            for (const name of ["consul-pki-ca", "consul-pki-server", "consul-pki-cli", "consul-pki-client-https"]) {
                assert.ok(names.includes(name), `${name} is not re-issued`);
            }
            assert.ok(!names.some((n) => n.endsWith("-key")), "no private key changes");
            assert.ok(!names.includes("consul-gossip-seed"));
        });

        it("replacing the CA key (pulumi up --replace) gives a new CA that signs every certificate", async () => {
            const { before, after } = await upTwice("dev", {}, (r) => r.name !== "consul-pki-ca-key");
            const oldCa = new x509.X509Certificate(String(before.outputs.caCertPem));
            const newCa = new x509.X509Certificate(String(after.outputs.caCertPem));
            assert.notStrictEqual(newCa.publicKey.rawData.byteLength, 0);
            assert.ok(!Buffer.from(newCa.publicKey.rawData).equals(Buffer.from(oldCa.publicKey.rawData)));
            for (const name of ["consul-pki-server", "consul-pki-cli", "consul-pki-client-https"]) {
                const cert = new x509.X509Certificate(String(state(after, name).certPem));
                assert.ok(
                    await cert.verify({ publicKey: newCa.publicKey, signatureOnly: true }),
                    `${name} not signed by the new CA`,
                );
                assert.ok(!(await cert.verify({ publicKey: oldCa.publicKey, signatureOnly: true })));
            }
            // Leaf keys are kept: only the CA key was replaced.
            assert.ok(!changed(before, after).includes("consul-pki-server-key"));
            // Every namespace's consul-ca ConfigMap carries the new CA.
            assert.strictEqual(inputsOf(after, "consul-k8s-ca").data["ca.crt"], after.outputs.caCertPem);
        });
    });

    describe("upgrade.md", () => {
        it("a staged upgrade changes the image and holds servers below the partition", async () => {
            const { before, after } = await upTwice("dev", { consulVersion: "1.17.3", updatePartition: "2" });
            const spec = inputsOf(after, "consul-servers-statefulset").spec;
            assert.strictEqual(spec.template.spec.containers[0].image, "hashicorp/consul:1.17.3");
            assert.deepStrictEqual(spec.updateStrategy, { type: "RollingUpdate", rollingUpdate: { partition: 2 } });
            const names = changed(before, after);
            assert.ok(!names.some((n) => n.startsWith("consul-pki") || n.startsWith("consul-gossip")), names.join());
        });

        it("VMs: the new version reaches every host's script, servers still one at a time", async () => {
            const { after } = await upTwice("prod", { consulVersion: "1.17.3" });
            const servers = after.mocks
                .ofType("command:remote:Command")
                .filter((r) => r.name.includes("-server-") && r.name.endsWith("-agent"));
            assert.strictEqual(servers.length, 3);
            for (const s of servers) assert.match(String(s.inputs.create), /VERSION=\W*1\.17\.3\W/);
            // Each server after the previous one (dependencies recorded from the engine registrations).
            for (const [i, s] of servers.entries()) {
                if (i > 0) assert.ok(s.dependencies.length > 0, `${s.name} does not wait for the previous server`);
            }
        });
    });

    describe("servers.md", () => {
        it("5 servers on Kubernetes: replicas, bootstrap_expect and min_quorum follow; the shared cert stays", async () => {
            const { before, after } = await upTwice("dev", { serverCount: "5" });
            assert.strictEqual(inputsOf(after, "consul-servers-statefulset").spec.replicas, 5);
            const config = JSON.parse(String(inputsOf(after, "consul-servers-config").data["server.json"]));
            assert.strictEqual(config.bootstrap_expect, 5);
            assert.strictEqual(config.autopilot.min_quorum, 5);
            assert.ok(!changed(before, after).includes("consul-pki-server"));
        });

        it("an even count is refused before anything changes", async () => {
            const { config } = stackFileConfig("dev");
            await assert.rejects(evaluateProgram({ ...config, serverCount: "4" }, { stack: "dev" }), /serverCount = 4/);
        });
    });

    describe("teardown.md", () => {
        it("server volumes are retained unless the stack says Delete", async () => {
            const { config } = stackFileConfig("dev");
            const kept = await evaluateProgram(config, { stack: "dev" });
            assert.deepStrictEqual(
                inputsOf(kept, "consul-servers-statefulset").spec.persistentVolumeClaimRetentionPolicy,
                {
                    whenDeleted: "Retain",
                    whenScaled: "Retain",
                },
            );
            const dropped = await evaluateProgram({ ...config, pvcRetentionWhenDeleted: "Delete" }, { stack: "dev" });
            assert.strictEqual(
                inputsOf(dropped, "consul-servers-statefulset").spec.persistentVolumeClaimRetentionPolicy.whenDeleted,
                "Delete",
            );
        });
    });
});
