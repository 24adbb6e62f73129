import * as assert from "assert";
import { evaluateProgram } from "./mocks";

describe("GossipKey", () => {
    it("is 32 random bytes in standard base64, a secret, and changes only with its keeper", async () => {
        const first = await evaluateProgram({}, { stack: "dev" });
        const key = first.outputs.gossipKey as string;
        assert.match(key, /^[A-Za-z0-9+/]{43}=$/);
        assert.strictEqual(Buffer.from(key, "base64").length, 32);
        assert.ok(first.secretOutputs.has("gossipKey"));
        const bytes = first.mocks.byName("consul-gossip-bytes");
        assert.strictEqual(bytes.inputs.length, 32);
        assert.deepStrictEqual(bytes.inputs.keepers, { keeper: "1" });
        // The keeper is the only input: a new value is what makes the provider replace the key.
        const rotated = await evaluateProgram({ gossipKeyKeeper: "2026-11-rotation" }, { stack: "dev" });
        assert.deepStrictEqual(rotated.mocks.byName("consul-gossip-bytes").inputs, {
            length: 32,
            keepers: { keeper: "2026-11-rotation" },
        });
    });
});
