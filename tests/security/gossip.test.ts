import * as assert from "assert";
import { gossipKeyFromSeed, SEED_LENGTH, tokenFromSeed } from "../../components/security/secret-seeds";
import { evaluateProgram } from "../mocks";

describe("GossipKey and ACL token IDs", () => {
    it("the gossip key is 32 bytes in standard base64, a secret, and changes only with its keeper", async () => {
        const first = await evaluateProgram({}, { stack: "dev" });
        const key = first.outputs.gossipKey as string;
        assert.match(key, /^[A-Za-z0-9+/]{43}=$/);
        assert.strictEqual(Buffer.from(key, "base64").length, 32);
        assert.ok(first.secretOutputs.has("gossipKey"));
        const seed = first.mocks.byName("consul-gossip-seed");
        assert.strictEqual(seed.type, "random:index/randomPassword:RandomPassword");
        assert.strictEqual(key, gossipKeyFromSeed(String(seed.state.result)));
        // The keeper is the only input that varies: a new value is what makes the provider replace it.
        assert.deepStrictEqual(seed.inputs, { length: SEED_LENGTH, special: false, keepers: { keeper: "1" } });
        const rotated = await evaluateProgram({ gossipKeyKeeper: "2026-11-rotation" }, { stack: "dev" });
        assert.deepStrictEqual(rotated.mocks.byName("consul-gossip-seed").inputs.keepers, {
            keeper: "2026-11-rotation",
        });
    });

    it("no random resource whose ID is its value (RandomBytes, RandomUuid, RandomId, RandomString) is used", async () => {
        // Pulumi stores resource IDs unencrypted; RandomPassword's ID is "none".
        const r = await evaluateProgram({}, { stack: "dev" });
        const randomTypes = new Set(r.mocks.resources.filter((x) => x.type.startsWith("random:")).map((x) => x.type));
        assert.deepStrictEqual([...randomTypes], ["random:index/randomPassword:RandomPassword"]);
    });

    it("derives keys and UUIDs deterministically, distinct per seed and per purpose", () => {
        const a = "A".repeat(SEED_LENGTH);
        const b = "B".repeat(SEED_LENGTH);
        assert.strictEqual(gossipKeyFromSeed(a), gossipKeyFromSeed(a));
        assert.notStrictEqual(gossipKeyFromSeed(a), gossipKeyFromSeed(b));
        const token = tokenFromSeed(a);
        assert.match(token, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.notStrictEqual(tokenFromSeed(b), token);
        assert.ok(
            !Buffer.from(gossipKeyFromSeed(a), "base64")
                .toString("hex")
                .startsWith(token.replace(/-/g, "").slice(0, 8)),
        );
    });
});
