// The scripts as files and headers: quoting, read-only parameters, one source for every path, and
// shellcheck on what is really sent.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { scriptHeader, shellQuote } from "../../components/shell";
import { PATHS, ScriptHost, TOOL_PATH } from "../../components/vm/paths";
import { applyScript } from "../../components/vm/scripts";
import { applyBase, SCRIPT_FILES, sh, shellcheck, hasShellcheck, parameters, everyScript } from "./script-cases";

describe("script headers", () => {
    it("shellQuote survives every awkward character through sh", () => {
        for (const value of ["plain", "it's", "$(touch /tmp/x) `id` ${HOME}", 'a "b" \\ c', "", "a;b|c&d"]) {
            const out = sh(`printf '%s' ${shellQuote(value)}`);
            assert.strictEqual(out.stdout, value);
        }
    });

    it("renders read-only assignments; a script that assigns a parameter aborts there", () => {
        assert.strictEqual(scriptHeader({ A: "x y", B_2: 3 }), "readonly A='x y'\nreadonly B_2='3'\n");
        const out = sh(`set -eu\n${scriptHeader({ NODE: "n1" })}NODE=other\necho "not reached $NODE"\n`);
        assert.notStrictEqual(out.status, 0);
        assert.strictEqual(out.stdout, "");
        assert.match(out.stderr, /NODE/);
        // Declaring it again, as the files' parameter blocks do, is allowed and changes nothing.
        assert.strictEqual(sh(`set -eu\n${scriptHeader({ NODE: "n1" })}readonly NODE\necho "$NODE"`).stdout, "n1\n");
    });

    it("refuses names that are not upper-case identifiers, and values with CR, LF or NUL", () => {
        for (const name of ["node", "1A", "A-B", "A B", "", "A=B"]) {
            assert.throws(() => scriptHeader({ [name]: "x" }), /bad script parameter name/, name);
        }
        for (const value of ["a\nb", "a\rb", "a\0b"]) {
            assert.throws(() => scriptHeader({ A: value }), /cannot contain a line break/, JSON.stringify(value));
        }
    });

    it("puts parameters in quoted assignments: a hostile value stays data", () => {
        const script = applyScript({ ...applyBase, releaseMirrorUrl: "https://m.example/'; touch /tmp/pwned; '" });
        const headerEnd = script.indexOf("set -eu");
        const out = sh(script.slice(0, headerEnd) + 'printf "%s" "$MIRROR"');
        assert.strictEqual(out.stdout, "https://m.example/'; touch /tmp/pwned; '");
        assert.throws(() => applyScript({ ...applyBase, nodeName: "a\nb" }), /line break/);
        assert.throws(() => applyScript({ ...applyBase, bundleSha256: "nope" }), /sha256/);
    });
});

describe("script files", () => {
    const files = fs.readdirSync(SCRIPT_FILES).filter((f) => f.endsWith(".sh"));

    it("are these parts, each a `# shellcheck shell=sh` file", () => {
        assert.deepStrictEqual(files.sort(), [
            "acl-remove.sh",
            "acl.sh",
            "apply.sh",
            "common.sh",
            "keyring.sh",
            "prune.sh",
            "remove.sh",
            "snapshot.sh",
        ]);
        for (const f of files) {
            assert.ok(fs.readFileSync(path.join(SCRIPT_FILES, f), "utf8").startsWith("# shellcheck shell=sh\n"), f);
        }
    });

    it("hard-code no path that PATHS defines: each comes from the header", () => {
        for (const f of files) {
            const code = fs
                .readFileSync(path.join(SCRIPT_FILES, f), "utf8")
                .split("\n")
                .filter((line) => !/^\s*#/.test(line));
            for (const value of [...Object.values(PATHS), TOOL_PATH]) {
                const line = code.find((l) => l.includes(value));
                assert.strictEqual(line, undefined, `${f} hard-codes ${value}`);
            }
        }
    });

    for (const [what, render] of everyScript) {
        it(`header and parameter blocks name the same variables: ${what}`, () => {
            const { header, declared } = parameters(render());
            assert.deepStrictEqual([...header.keys()].sort(), [...declared].sort());
        });
    }

    it("every path in a header is a PATHS entry or TOOL_PATH: a rebased host moves them all", () => {
        const rebased: ScriptHost = {
            paths: Object.fromEntries(Object.entries(PATHS).map(([k, v]) => [k, `/fake${v}`])) as ScriptHost["paths"],
            toolPath: "/fake/bin",
        };
        const pathValues = new Set<string>([...Object.values(PATHS), TOOL_PATH]);
        const named = new Set<string>();
        for (const [what, render] of everyScript) {
            const real = parameters(render()).header;
            const moved = parameters(render(rebased)).header;
            for (const [name, value] of real) {
                if (name === "TOOL_PATH") {
                    assert.strictEqual(value, TOOL_PATH);
                    assert.strictEqual(moved.get(name), "/fake/bin");
                } else if (value.startsWith("/")) {
                    assert.ok(pathValues.has(value), `${what}: ${name}=${value} is not from PATHS`);
                    assert.strictEqual(moved.get(name), `/fake${value}`, `${what}: ${name}`);
                    named.add(value);
                } else {
                    assert.strictEqual(moved.get(name), value, `${what}: ${name}`);
                }
            }
        }
        // The certificates and keys are named only by the TLS_DIR/*.pem and CLI_DIR/*.pem patterns.
        assert.deepStrictEqual(
            Object.entries(PATHS)
                .filter(([, value]) => !named.has(value))
                .map(([key]) => key),
            ["serverCert", "clientHttpsCert", "clientHttpsKey", "serverKey", "cliCert", "cliKey"],
        );
    });

    it("keeps comments out of the rendered script: only the shebang starts with #", () => {
        for (const [what, render] of everyScript) {
            const lines = render().split("\n");
            assert.strictEqual(lines[0], "#!/bin/sh", what);
            assert.deepStrictEqual(
                lines.slice(1).filter((l) => /^\s*#/.test(l)),
                [],
                what,
            );
        }
    });
});

describe("shellcheck on the rendered scripts", function () {
    before(function () {
        if (!hasShellcheck) throw new Error("shellcheck is not installed: run scripts/ensure-tools.sh (npm test does)");
    });
    for (const [what, render] of everyScript) {
        it(`passes: ${what}`, () => {
            const result = shellcheck(render());
            assert.strictEqual(result.status, 0, result.output);
        });
        it(`parses with sh -n: ${what}`, () => {
            const result = spawnSync("sh", ["-n"], { input: render(), encoding: "utf8" });
            assert.strictEqual(result.status, 0, result.stderr);
        });
    }
    it("is an honest check: it flags an unquoted expansion, and a misspelt upper-case parameter", () => {
        assert.notStrictEqual(shellcheck('#!/bin/sh\nx="a b"\nrm $x\n').status, 0);
        assert.notStrictEqual(shellcheck("#!/bin/sh\nreadonly NODE='n1'\necho \"$NDOE\"\n").status, 0);
    });
});
