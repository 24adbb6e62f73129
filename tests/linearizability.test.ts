// The Go linearizability checker used by the end-to-end suite (tests/e2e/linearizability.ts), run on
// small hand-made histories: it must build here and tell a linearizable history from a stale read.
// Its model is tested in depth by `go test` in tests/e2e/linearizability.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildChecker, checkHistory, goBinary, History, HistoryOp } from "./e2e/linearizability";

function op(
    client: number,
    o: Partial<HistoryOp> & Pick<HistoryOp, "op">,
    invokeNs: number,
    returnNs: number,
): HistoryOp {
    return { client, key: "lin/k0", unknown: false, invokeNs, returnNs, ...o };
}

describe("linearizability checker", function () {
    let checker = "";
    let outDir = "";

    before(function () {
        this.timeout(10 * 60_000); // a first build compiles porcupine and part of Go's standard library
        checker = buildChecker(); // throws, naming what is missing, when Go is not installed
        outDir = fs.mkdtempSync(path.join(os.tmpdir(), "lincheck-test-"));
    });

    after(() => {
        if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
    });

    it("passes its own Go tests (the register model, CAS legality, unknown writes)", function () {
        this.timeout(10 * 60_000);
        const dir = path.join(__dirname, "e2e", "linearizability");
        const r = spawnSync(goBinary(), ["test", "-count=1", "./..."], {
            cwd: dir,
            encoding: "utf8",
            env: { ...process.env, GOFLAGS: "-mod=mod -buildvcs=false", GOTOOLCHAIN: "local" },
        });
        assert.strictEqual(r.status, 0, `go test in ${dir} failed:\n${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /^ok\s/m);
    });

    it("builds once and reuses the cached binary", () => {
        assert.ok(fs.statSync(checker).isFile());
        assert.strictEqual(buildChecker(), checker);
    });

    it("accepts a linearizable history with overlapping operations, CAS and an unknown write", () => {
        const history: History = {
            ops: [
                op(0, { op: "put", value: "c0-0", ok: true }, 0, 100),
                op(1, { op: "read", result: "" }, 10, 20), // before the put took effect
                op(2, { op: "read", result: "c0-0" }, 50, 150), // after
                op(1, { op: "cas", expected: "c0-0", value: "c1-0", ok: true }, 200, 300),
                op(2, { op: "cas", expected: "c0-0", value: "c2-0", ok: false }, 210, 310),
                op(0, { op: "put", value: "c0-1", unknown: true }, 400, 2400), // timed out, took effect
                op(1, { op: "read", result: "c1-0" }, 500, 600),
                op(2, { op: "read", result: "c0-1" }, 3000, 3100),
            ],
        };
        const r = checkHistory(history, path.join(outDir, "ok"), checker);
        assert.deepStrictEqual(r.badKeys, []);
        assert.strictEqual(r.linearizable, true);
        assert.strictEqual(r.ops, 8);
        assert.strictEqual(r.keys, 1);
        assert.strictEqual(r.unknownOps, 1);
        assert.deepStrictEqual(r.htmlFiles, []);
        assert.ok(fs.existsSync(path.join(outDir, "ok", "linearizability-history.json")));
    });

    it("rejects a stale read and writes the visualisation", () => {
        const history: History = {
            ops: [
                op(0, { op: "put", value: "c0-0", ok: true }, 0, 10),
                op(1, { op: "put", value: "c1-0", ok: true }, 20, 30),
                op(2, { op: "read", result: "c0-0" }, 40, 50), // "c0-0" was overwritten before
                { ...op(0, { op: "put", value: "c0-1", ok: true }, 0, 10), key: "lin/k1" },
            ],
        };
        const dir = path.join(outDir, "stale");
        const r = checkHistory(history, dir, checker);
        assert.strictEqual(r.linearizable, false);
        assert.deepStrictEqual(r.badKeys, ["lin/k0"]);
        assert.strictEqual(r.keys, 2);
        assert.deepStrictEqual(r.htmlFiles, [path.join(dir, "linearizability-lin_k0.html")]);
        assert.match(fs.readFileSync(r.htmlFiles[0], "utf8"), /<html/i);
    });
});
