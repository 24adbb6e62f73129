// The GitHub workflows: actionlint (pinned, built from the Go module proxy by scripts/actionlint.sh)
// passes on ours and fails on a broken one, and the workflows preview and deploy every stack file.

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

type Step = { uses?: string; with?: Record<string, unknown>; run?: string; env?: Record<string, string> };
type Job = {
    needs?: string | string[];
    environment?: string;
    steps: Step[];
    strategy?: { matrix: { stack: string[] } };
};
type Workflow = { on: Record<string, unknown>; jobs: Record<string, Job> };

const load = (file: string) => yaml.load(fs.readFileSync(path.join(WORKFLOWS, file), "utf8")) as Workflow;
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
        assert.ok("pull_request" in pr.on);
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
        assert.deepStrictEqual(deploy.on.push, { branches: ["main"] });
        const ups = Object.values(deploy.jobs).filter((job) => pulumiSteps(job).some((s) => s.with?.command === "up"));
        assert.deepStrictEqual(ups.map((job) => job.environment).sort(), stacks);
        for (const job of ups) {
            assert.match(String(pulumiSteps(job)[0].with?.["stack-name"]), new RegExp(`/consul/${job.environment}$`));
        }
        assert.deepStrictEqual(deploy.jobs["up-prod"].needs, "up-dev");
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
