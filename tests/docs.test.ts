// The docs point readers at files (`components/vm/plan.ts`, `tests/mocks.ts`) and name the functions
// in them. A move or a rename that forgets the docs leaves a reader at a file that is not there.

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "./mocks";

const DOCS = [
    "README.md",
    ...fs
        .readdirSync(path.join(REPO_ROOT, "docs"), { recursive: true, encoding: "utf8" })
        .filter((f) => f.endsWith(".md"))
        .map((f) => path.join("docs", f)),
];

/** Backticked repository paths: `components/...`, `tests/...`, `scripts/...` and so on. */
export function pathsIn(markdown: string): string[] {
    const found = new Set<string>();
    for (const match of markdown.matchAll(
        /`((?:components|tests|scripts|policy|app|examples|docs)\/[A-Za-z0-9_./*-]+)`/g,
    )) {
        found.add(match[1].replace(/\/$/, ""));
    }
    return [...found];
}

function exists(relative: string): boolean {
    if (!relative.includes("*")) return fs.existsSync(path.join(REPO_ROOT, relative));
    // A glob names a folder and an ending: its folder must exist.
    return fs.existsSync(path.join(REPO_ROOT, relative.slice(0, relative.indexOf("*")).replace(/\/[^/]*$/, "")));
}

describe("docs", () => {
    for (const doc of DOCS) {
        it(`${doc} names only files that exist`, () => {
            const missing = pathsIn(fs.readFileSync(path.join(REPO_ROOT, doc), "utf8")).filter((p) => !exists(p));
            assert.deepStrictEqual(missing, [], `${doc} points at files that are not in the repository`);
        });
    }

    it("finds a path that is not there (control)", () => {
        const paths = pathsIn("see `components/consul-cluster.ts` and `tests/mocks.ts`");
        assert.deepStrictEqual(
            paths.filter((p) => !exists(p)),
            ["components/consul-cluster.ts"],
        );
    });
});

/** The README's Layout block: each line's path, folders ending in `/`, indented names under the folder above. */
export function layoutPaths(readme: string): string[] {
    const section = readme.slice(readme.indexOf("## Layout"));
    const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
    const paths: string[] = [];
    let folder = "";
    for (const line of block.split("\n")) {
        const names = /^(\s*)(\S.*?)(\s{2,}|$)/.exec(line);
        if (!names) continue;
        if (names[1] === "") {
            const [first] = names[2].split(" ");
            paths.push(first);
            if (first.endsWith("/")) folder = first;
            continue;
        }
        // An indented line that starts after the path column is the description's second line.
        if (names[1].length > 4) continue;
        for (const name of names[2].split(" ").filter((n) => n !== "" && n !== "...")) {
            paths.push(folder + name);
        }
    }
    return paths.map((p) => p.replace(/\/$/, ""));
}

describe("README Layout", () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    const listed = layoutPaths(readme);

    it("lists only paths that exist", () => {
        assert.ok(listed.length > 20, `the Layout block was not found or is short: ${listed.join(", ")}`);
        assert.deepStrictEqual(
            listed.filter((p) => !exists(p)),
            [],
        );
    });

    it("is the map: every folder under components/ is on it", () => {
        const folders = fs
            .readdirSync(path.join(REPO_ROOT, "components"), { recursive: true, encoding: "utf8" })
            .filter((f) => fs.statSync(path.join(REPO_ROOT, "components", f)).isDirectory())
            .map((f) => `components/${f}`);
        assert.deepStrictEqual(
            // A glob (`scripts/*.sh`) puts its folder on the map.
            folders.filter((f) => !listed.some((p) => p === f || p.startsWith(`${f}/*`))),
            [],
        );
    });

    it("catches a folder left off the map (control)", () => {
        const paths = layoutPaths("## Layout\n\n```\ncomponents/vm/  hosts\n  plan.ts gone.ts  x\n```\n");
        assert.deepStrictEqual(paths, ["components/vm", "components/vm/plan.ts", "components/vm/gone.ts"]);
        assert.deepStrictEqual(
            paths.filter((p) => !exists(p)),
            ["components/vm/gone.ts"],
        );
    });
});
