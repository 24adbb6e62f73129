import * as assert from "assert";
import { diffOp } from "./command-diff";

describe("command provider diff rules (diffOp)", () => {
    const base = { connection: { host: "10.0.0.1" }, create: "echo hi", stdin: "a" };

    it("new → create, unchanged → none", () => {
        assert.strictEqual(diffOp(undefined, base), "create");
        assert.strictEqual(diffOp(base, { ...base }), "none");
    });

    it("a changed connection or stdin is an update, not a replace", () => {
        assert.strictEqual(diffOp(base, { ...base, connection: { host: "10.0.0.2" } }), "update");
        assert.strictEqual(diffOp(base, { ...base, stdin: "b" }), "update");
    });

    it("changed triggers replace", () => {
        assert.strictEqual(diffOp(base, { ...base, triggers: ["x"] }), "replace");
        assert.strictEqual(diffOp({ ...base, triggers: ["x"] }, { ...base, triggers: ["y"] }), "replace");
    });
});
