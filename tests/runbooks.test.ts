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

    describe("certificates.md: a new CA in three pulumi ups", () => {
        const pems = (bundle: unknown) =>
            String(bundle)
                .split(/(?<=-----END CERTIFICATE-----\n?)/)
                .filter((p) => p.includes("BEGIN CERTIFICATE"))
                .map((p) => new x509.X509Certificate(p));
        const signedBy = async (certPem: unknown, ca: x509.X509Certificate) =>
            new x509.X509Certificate(String(certPem)).verify({ publicKey: ca.publicKey, signatureOnly: true });
        /** Paths whose bundle line differs in an agent command between two evaluations. */
        const filesChanged = (before: EvaluatedStack, after: EvaluatedStack, agent: string) => {
            const lines = (stack: EvaluatedStack) =>
                new Map(
                    String(inputsOf(stack, agent).stdin)
                        .trim()
                        .split("\n")
                        .map((line) => [line.split(" ")[0], line] as const),
                );
            const was = lines(before);
            return [...lines(after)].filter(([p, line]) => was.get(p) !== line).map(([p]) => p);
        };

        it("trust, then reissue, then drop the old CA: only TLS files change on a host, each phase a reload", async () => {
            const { config, secretKeys } = stackFileConfig("prod");
            const up = (prev: EvaluatedStack | undefined, change: Config) =>
                evaluateProgram(
                    { ...config, ...change },
                    { stack: "prod", secretKeys, mocks: new ConsulMocks(prev?.mocks) },
                );
            const start = await up(undefined, {});
            const rotating = { caKeeper: "2027", caPreviousKeeper: "initial" };
            const trust = await up(start, { ...rotating, caRotationPhase: "trust" });
            const reissue = await up(trust, { ...rotating, caRotationPhase: "reissue" });
            const done = await up(reissue, { caKeeper: "2027" });

            const [oldCa] = pems(start.outputs.caCertPem);
            const [signerInTrust, newCa] = pems(trust.outputs.caCertPem);
            // Phase 1: a second CA, trusted everywhere; the old one still signs, no leaf changes.
            assert.strictEqual(signerInTrust.toString("pem"), oldCa.toString("pem"));
            assert.ok(newCa && newCa.subject.includes("(2027)"), "no second CA in the bundle");
            const trustChanged = changed(start, trust);
            assert.ok(trustChanged.includes("consul-pki-ca-2027") && trustChanged.includes("consul-pki-ca-2027-key"));
            assert.ok(!trustChanged.some((n) => /^consul-pki-(consul-server-\d|cli)$/.test(n)), trustChanged.join());
            // Phase 2: every leaf from the new CA, both still trusted (the new one first), no key changes.
            assert.deepStrictEqual(
                pems(reissue.outputs.caCertPem).map((c) => c.subject),
                [newCa.subject, oldCa.subject],
            );
            for (const name of ["consul-pki-consul-server-1", "consul-pki-cli"]) {
                assert.ok(await signedBy(state(reissue, name).certPem, newCa), `${name} not from the new CA`);
                assert.ok(await signedBy(state(trust, name).certPem, oldCa), `${name} was not from the old CA before`);
            }
            assert.ok(!changed(trust, reissue).some((n) => n.endsWith("-key")), "a private key changed");
            // Phase 3: the old CA leaves the state and the bundle; the leaves stay as re-issued.
            assert.deepStrictEqual(
                pems(done.outputs.caCertPem).map((c) => c.subject),
                [newCa.subject],
            );
            const names = done.mocks.resources.map((r) => r.name);
            assert.ok(!names.includes("consul-pki-ca") && !names.includes("consul-pki-ca-key"), "the old CA is kept");
            assert.ok(!changed(reissue, done).includes("consul-pki-consul-server-1"));
            // On every host each phase changes TLS files only (a reload, never a restart).
            const agents = done.mocks
                .ofType("command:remote:Command")
                .filter((r) => r.name.endsWith("-agent"))
                .map((r) => r.name);
            assert.strictEqual(agents.length, 5);
            for (const [before, after] of [
                [start, trust],
                [trust, reissue],
                [reissue, done],
            ]) {
                for (const agent of agents) {
                    const files = filesChanged(before, after, agent);
                    assert.ok(files.length > 0, `${agent}: nothing changed`);
                    assert.ok(
                        files.every((f) => f.startsWith("/etc/consul.d/tls/") || f.startsWith("/etc/consul.d/cli/")),
                        `${agent}: ${files.join(", ")}`,
                    );
                }
            }
        });

        it("a phase without the previous keeper, or the same keeper twice, is refused before anything changes", async () => {
            const { config, secretKeys } = stackFileConfig("prod");
            const refused = (change: Config, message: RegExp) =>
                assert.rejects(evaluateProgram({ ...config, ...change }, { stack: "prod", secretKeys }), message);
            await refused({ caRotationPhase: "trust" }, /caRotationPhase = "trust": needs caPreviousKeeper/);
            await refused({ caPreviousKeeper: "initial" }, /caRotationPhase = "": is not set, and must be trust/);
            await refused(
                { caPreviousKeeper: "initial", caRotationPhase: "reissue" },
                /caPreviousKeeper = "initial": is the same as caKeeper/,
            );
            await refused({ caKeeper: "a b" }, /caKeeper = "a b": must be 1 to 40 letters/);
            await refused(
                { caKeeper: "x", caPreviousKeeper: "initial", caRotationPhase: "later" },
                /must be one of trust, reissue/,
            );
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
            const config = JSON.parse(String(inputsOf(after, "consul-servers-config").data["startup-only.json"]));
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
