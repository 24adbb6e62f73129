// The GitHub workflows: actionlint (pinned, built from the Go module proxy by scripts/actionlint.sh)
// passes on ours and fails on a broken one, and the workflows preview and deploy every stack file.
// Secrets: a pull request's code never sees a deploy credential (issue 13); each checker below is
// also run on the workflow and README from before that fix, and must fail there.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { REPO_ROOT } from "./mocks";

const WORKFLOWS = path.join(REPO_ROOT, ".github", "workflows");

function actionlint(...files: string[]): { status: number | null; output: string } {
    const run = spawnSync("bash", [path.join(REPO_ROOT, "scripts", "actionlint.sh"), ...files], {
        cwd: REPO_ROOT,
        encoding: "utf8",
    });
    return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

type Step = {
    name?: string;
    uses?: string;
    with?: Record<string, unknown>;
    run?: string;
    env?: Record<string, string>;
};
type Job = {
    needs?: string | string[];
    if?: string;
    environment?: string | { name: string };
    permissions?: Record<string, string> | string;
    steps: Step[];
    strategy?: { matrix: { stack: string[] } };
};
type Workflow = {
    on: Record<string, unknown> | string | string[];
    env?: Record<string, string>;
    permissions?: Record<string, string> | string;
    jobs: Record<string, Job>;
};

const parse = (text: string) => yaml.load(text) as Workflow;
const load = (file: string) => parse(fs.readFileSync(path.join(WORKFLOWS, file), "utf8"));
const readme = () => fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");

// Before issue 13: the PR workflow, kept as a fixture for the negative controls.
const BEFORE_FIX_PR_WORKFLOW = path.join(REPO_ROOT, "tests", "fixtures", "pull-request.before-issue-13.yml");

/** The only secret a job outside a GitHub environment may read: the run's own token. */
const RUN_TOKEN = "GITHUB_TOKEN";
const PREVIEW_ENVIRONMENT = "preview";
const PREVIEW_SECRETS = ["GITHUB_TOKEN", "PREVIEW_KUBECONFIG", "PULUMI_ACCESS_TOKEN"];
const DEPLOY_ENVIRONMENTS = ["dev", "prod"];
// Fork pull requests get no secrets; the preview job says so instead of failing without them.
const SAME_REPO_ONLY = "github.event.pull_request.head.repo.full_name == github.repository";

const triggers = (wf: Workflow) =>
    typeof wf.on === "string" ? [wf.on] : Array.isArray(wf.on) ? wf.on : Object.keys(wf.on);
const environmentOf = (job: Job) => (typeof job.environment === "object" ? job.environment.name : job.environment);

/**
 * Every secret a job reads, by name. Any other mention of `secrets` (`secrets[...]`,
 * `toJSON(secrets)`, `secrets: inherit`) cannot be checked by name, so it is returned as "*".
 */
function secretsIn(value: unknown): string[] {
    const text = JSON.stringify(value ?? {});
    const names = new Set<string>();
    for (const m of text.matchAll(/\bsecrets\b(\.([A-Za-z_][A-Za-z0-9_]*))?/g)) names.add(m[2] ?? "*");
    return [...names].sort();
}

/** Where a workflow file lets a secret reach code that an environment's rules do not gate. */
function secretProblems(file: string, wf: Workflow): string[] {
    const problems: string[] = [];
    const on = triggers(wf);
    const isPullRequest = on.some((t) => t.startsWith("pull_request"));
    // These run with the base repository's secrets on events a fork can cause.
    for (const trigger of ["pull_request_target", "workflow_run"]) {
        if (on.includes(trigger)) problems.push(`${file}: triggered by ${trigger}`);
    }
    for (const name of secretsIn({ env: wf.env })) problems.push(`${file}: workflow-level env reads secret ${name}`);
    for (const [jobName, job] of Object.entries(wf.jobs)) {
        const where = `${file} job ${jobName}`;
        const environment = environmentOf(job);
        const secrets = secretsIn(job);
        for (const name of secrets) {
            if (name !== RUN_TOKEN && environment === undefined) {
                problems.push(`${where}: reads secret ${name} outside an environment`);
            }
        }
        if (!isPullRequest) continue;
        for (const name of secrets) {
            if (/SSH/i.test(name)) problems.push(`${where}: reads SSH secret ${name}`);
            if (/KUBECONFIG/i.test(name) && name !== "PREVIEW_KUBECONFIG") {
                problems.push(`${where}: reads deploy kubeconfig ${name}`);
            }
            if (!PREVIEW_SECRETS.includes(name)) problems.push(`${where}: reads ${name}, not a preview secret`);
        }
        if (environment !== undefined && environment !== PREVIEW_ENVIRONMENT) {
            problems.push(`${where}: runs in environment ${environment} on a pull request`);
        }
        if (secrets.some((n) => n !== RUN_TOKEN) && !(job.if ?? "").includes(SAME_REPO_ONLY)) {
            problems.push(`${where}: reads secrets on pull requests from forks too`);
        }
    }
    return problems;
}

/** The pull-request preview job: environment `preview`, its secrets only, no SSH key written. */
function previewProblems(wf: Workflow): string[] {
    const preview = wf.jobs.preview;
    const problems: string[] = [];
    if (environmentOf(preview) !== PREVIEW_ENVIRONMENT) {
        problems.push(`preview runs in environment ${environmentOf(preview)}, not ${PREVIEW_ENVIRONMENT}`);
    }
    const extra = secretsIn(preview).filter((n) => !PREVIEW_SECRETS.includes(n));
    if (extra.length > 0) problems.push(`preview reads ${extra.join(", ")}`);
    if (!secretsIn(preview).includes("PREVIEW_KUBECONFIG")) problems.push("preview does not use PREVIEW_KUBECONFIG");
    if (preview.steps.some((s) => /\.ssh|ssh-agent|SSH/.test(`${s.run ?? ""} ${s.uses ?? ""} ${s.name ?? ""}`))) {
        problems.push("preview sets up an SSH key");
    }
    return problems;
}

/** (environment, secret) pairs the workflows read, GITHUB_TOKEN aside. */
function secretPairs(...workflows: Workflow[]): string[] {
    const pairs = new Set<string>();
    for (const wf of workflows) {
        for (const job of Object.values(wf.jobs)) {
            for (const name of secretsIn(job).filter((n) => n !== RUN_TOKEN)) {
                pairs.add(`${environmentOf(job) ?? "(none)"} ${name}`);
            }
        }
    }
    return [...pairs].sort();
}

// The README must say what GitHub runs and what only .ci/run runs.
const README_GITHUB_SENTENCE =
    "GitHub Actions runs `npm test`'s checks only (type-check, lint, unit suite), none of the real-host " +
    "suites (`test:k8s`, `test:e2e`, `test:engine`, `test:k8s-real`): they need root, systemd-nspawn and " +
    "long builds, and only `.ci/run` (`npm ci` + `npm run test:all`, on a root machine) runs them.";
const README_FALSE_CLAIMS = [/on `main`, the full test command/, /is what CI runs/, /no leaderless poll/];
const oneLine = (text: string) => text.replace(/\s+/g, " ");

/** The leaderless-gap bound every real-host suite asserts (`longestGapMs <= N` / `gapMs <= N`). */
function assertedGapBoundsMs(): number[] {
    const files = ["tests/e2e/kv-checks.ts", "tests/e2e/cluster.e2e.ts", "tests/engine/engine.e2e.ts"];
    return files.flatMap((f) =>
        [...fs.readFileSync(path.join(REPO_ROOT, f), "utf8").matchAll(/\b(?:longestGapMs|gapMs) <= (\d+)/g)].map((m) =>
            Number(m[1]),
        ),
    );
}

function readmeProblems(text: string, gapBoundMs: number): string[] {
    const problems = README_FALSE_CLAIMS.filter((re) => re.test(oneLine(text))).map((re) => `claims ${re.source}`);
    if (!oneLine(text).includes(README_GITHUB_SENTENCE)) problems.push("does not say what GitHub runs");
    // Every leaderless figure names the bound the tests assert (a measured 0 ms may stand beside it).
    const bound = `${gapBoundMs / 1000} s`;
    for (const line of text.split("\n").filter((l) => /leaderless/.test(l))) {
        if (!line.includes(bound)) problems.push(`leaderless claim without the asserted ${bound}: ${line.trim()}`);
    }
    return problems;
}
const stacks = fs
    .readdirSync(REPO_ROOT)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
const pulumiSteps = (job: Job) => job.steps.filter((s) => s.uses?.startsWith("pulumi/actions@"));

describe("GitHub workflows", function () {
    // The first run builds actionlint from the module proxy.
    this.timeout(300_000);

    it("pass actionlint (with shellcheck on the run: scripts)", () => {
        const result = actionlint();
        assert.strictEqual(result.status, 0, result.output);
    });

    it("actionlint fails a broken workflow (control)", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "actionlint-"));
        const broken = path.join(dir, "broken.yml");
        fs.writeFileSync(
            broken,
            [
                "on: push",
                "jobs:",
                "  test:",
                "    runs-on: ubuntu-latest",
                "    needs: no-such-job",
                "    steps:",
                "      - run: echo ${{ matrix.missing }}",
            ].join("\n") + "\n",
        );
        try {
            const result = actionlint(broken);
            assert.notStrictEqual(result.status, 0, result.output);
            assert.match(result.output, /no-such-job/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("preview every stack on pull requests with the policy pack, commenting on the PR", () => {
        const pr = load("pull-request.yml");
        assert.ok(triggers(pr).includes("pull_request"));
        const preview = pr.jobs.preview;
        assert.deepStrictEqual([...(preview.strategy?.matrix.stack ?? [])].sort(), stacks);
        const [step] = pulumiSteps(preview);
        assert.strictEqual(step.with?.command, "preview");
        assert.strictEqual(step.with?.["comment-on-pr"], true);
        assert.strictEqual(step.with?.policyPacks, "policy");
        assert.ok(fs.existsSync(path.join(REPO_ROOT, "policy", "PulumiPolicy.yaml")));
        const checks = pr.jobs.checks.steps.map((s) => s.run ?? "").join("\n");
        for (const script of ["npm ci", "npm run build", "npm run lint", "npm run test:unit"]) {
            assert.ok(checks.includes(script), `the PR checks do not run ${script}`);
        }
    });

    it("deploy every stack from main, each gated by the GitHub environment of its name", () => {
        const deploy = load("deploy.yml");
        assert.deepStrictEqual((deploy.on as Record<string, unknown>).push, { branches: ["main"] });
        const ups = Object.values(deploy.jobs).filter((job) => pulumiSteps(job).some((s) => s.with?.command === "up"));
        assert.deepStrictEqual(ups.map(environmentOf).sort(), stacks);
        for (const job of ups) {
            assert.match(
                String(pulumiSteps(job)[0].with?.["stack-name"]),
                new RegExp(`/consul/${environmentOf(job) ?? ""}$`),
            );
        }
        assert.deepStrictEqual(deploy.jobs["up-prod"].needs, "up-dev");
    });

    it("let no job outside a GitHub environment read a secret, and no pull request a deploy secret", () => {
        const problems = ["pull-request.yml", "deploy.yml"].flatMap((f) => secretProblems(f, load(f)));
        assert.deepStrictEqual(problems, []);
        assert.deepStrictEqual(previewProblems(load("pull-request.yml")), []);
        // Deploy jobs: every `pulumi up` in `dev`/`prod`, and every secret-reading job in one of them.
        const deploy = load("deploy.yml");
        for (const [name, job] of Object.entries(deploy.jobs)) {
            if (secretsIn(job).some((n) => n !== RUN_TOKEN)) {
                assert.ok(DEPLOY_ENVIRONMENTS.includes(environmentOf(job) ?? ""), `deploy.yml job ${name}`);
            }
        }
    });

    it("keep GITHUB_TOKEN's permissions minimal: contents read, pull-requests write for the preview comment", () => {
        for (const file of ["pull-request.yml", "deploy.yml"]) {
            const wf = load(file);
            assert.deepStrictEqual(wf.permissions, { contents: "read" }, file);
            for (const [name, job] of Object.entries(wf.jobs)) {
                if (job.permissions === undefined) continue;
                const expected = file === "pull-request.yml" && name === "preview";
                assert.ok(expected, `${file} job ${name} widens permissions`);
                assert.deepStrictEqual(job.permissions, { contents: "read", "pull-requests": "write" });
            }
        }
    });

    it("document every secret the workflows read as an environment secret of that environment (docs/ci.md)", () => {
        const doc = fs.readFileSync(path.join(REPO_ROOT, "docs", "ci.md"), "utf8");
        const documented = [...doc.matchAll(/^\| `([a-z]+)` +\| `([A-Z0-9_]+)` +\|/gm)].map((m) => `${m[1]} ${m[2]}`);
        const used = secretPairs(load("pull-request.yml"), load("deploy.yml"));
        assert.deepStrictEqual([...documented].sort(), used);
        assert.deepStrictEqual(
            used.filter((p) => p.startsWith("(none) ")),
            [],
        );
    });

    it("README: says GitHub runs none of the real-host suites, and gives the leaderless bound the tests assert", () => {
        const bounds = assertedGapBoundsMs();
        assert.ok(bounds.length >= 3, `found ${bounds.length} leaderless-gap assertions`);
        assert.deepStrictEqual([...new Set(bounds)], [2000]);
        assert.deepStrictEqual(readmeProblems(readme(), bounds[0]), []);
    });

    it("the secret checks fail on the workflow from before issue 13 and on pull_request_target (control)", () => {
        const before = parse(fs.readFileSync(BEFORE_FIX_PR_WORKFLOW, "utf8"));
        const problems = secretProblems("before.yml", before);
        for (const expected of [
            /job preview: reads secret PROD_SSH_PRIVATE_KEY outside an environment/,
            /job preview: reads secret DEV_KUBECONFIG outside an environment/,
            /job preview: reads SSH secret PROD_SSH_PRIVATE_KEY/,
            /job preview: reads deploy kubeconfig DEV_KUBECONFIG/,
            /job preview: reads secrets on pull requests from forks too/,
        ]) {
            assert.ok(
                problems.some((p) => expected.test(p)),
                `${expected.source} not found in:\n${problems.join("\n")}`,
            );
        }
        const preview = previewProblems(before);
        for (const expected of [/not preview/, /reads DEV_KUBECONFIG, PROD_SSH_PRIVATE_KEY/, /SSH key/]) {
            assert.ok(
                preview.some((p) => expected.test(p)),
                `${expected.source} not found in:\n${preview.join("\n")}`,
            );
        }
        assert.ok(secretPairs(before).includes("(none) PROD_SSH_PRIVATE_KEY"));
        // A workflow that hands secrets to fork code, and a job reading all secrets at once.
        const target = parse(
            [
                "on: pull_request_target",
                "jobs:",
                "  x:",
                "    runs-on: ubuntu-latest",
                "    steps:",
                "      - run: echo",
                "        env:",
                "          ALL: ${{ toJSON(secrets) }}",
            ].join("\n"),
        );
        const targetProblems = secretProblems("t.yml", target);
        for (const expected of [
            "t.yml: triggered by pull_request_target",
            "t.yml job x: reads secret * outside an environment",
        ]) {
            assert.ok(targetProblems.includes(expected), `${expected} not found in:\n${targetProblems.join("\n")}`);
        }
    });

    it("the README checks fail on the README from before issue 13 (control)", () => {
        const oldLines = [
            "`npm run test:all` is what CI runs (`.ci/run`): `npm test` (type-check, lint, unit suite, ~4 min),",
            "- `.github/workflows/deploy.yml`: on `main`, the full test command, then `pulumi up` for `dev`, then",
            "| 3 | rolling change | in the engine's order; no leaderless poll; leadership moved at most twice |",
            "| rolling `logLevel` change | 23–27 s, leaderless gap 0 ms (100 ms polls) |",
        ].join("\n");
        const problems = readmeProblems(oldLines, 2000);
        assert.strictEqual(problems.length, 3 + 1 + 2, problems.join("\n"));
    });

    it("never ask Pulumi for debug output, which prints secret values (the SSH key) in CI logs", () => {
        for (const file of ["pull-request.yml", "deploy.yml"]) {
            for (const [name, job] of Object.entries(load(file).jobs)) {
                for (const step of pulumiSteps(job)) {
                    const where = `${file} job ${name}`;
                    assert.deepStrictEqual(
                        Object.keys(step.with ?? {}).filter((k) => /debug|verbos|log/i.test(k)),
                        [],
                        `${where} sets a debug/log input`,
                    );
                    assert.doesNotMatch(JSON.stringify(step.with ?? {}), /--debug|--event-log|--verbose|-v=/, where);
                    assert.deepStrictEqual(
                        Object.keys(step.env ?? {}).filter((k) => /DEBUG|LOG/i.test(k)),
                        [],
                        `${where} sets a debug/log variable`,
                    );
                }
            }
        }
    });
});
