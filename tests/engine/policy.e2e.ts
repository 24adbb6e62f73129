// The policy pack (policy/) run by the real Pulumi engine, as the README and the pull-request workflow
// run it: `pulumi preview --stack <stack> --policy-pack policy`, with the CLI and the language host
// from scripts/engine/build.sh (the host starts the pack through RunPlugin). No hosts or cluster: a
// preview connects to none. The engine's event log says which rules ran on which resource and
// what they reported, so each test asserts the pack really judged the resources, not just an exit code.
// Run with `npm run test:engine` (or this file alone with mocha, as the README says).

import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { log } from "../e2e/hosts";
import { REPO_ROOT, stackFileConfig } from "../mocks";
import { resourcePolicies, stackPolicies } from "../../policy/rules";
import { engineCacheDir, VM_ENGINE_COMPONENTS } from "../../scripts/engine/engine-cache";
import { nameOf, PulumiProject, RunResult } from "./pulumi-cli";

const PACK = "consul-security";
const PACK_VERSION = (
    JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "policy", "package.json"), "utf8")) as {
        version: string;
    }
).version;
const kubernetesSdkVersion = (): string =>
    (
        JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
            dependencies: Record<string, string>;
        }
    ).dependencies["@pulumi/kubernetes"];
const RESOURCE_RULES = resourcePolicies.map((p) => p.name).sort();
const AGENTS = [
    "server-consul-server-1",
    "server-consul-server-2",
    "server-consul-server-3",
    "client-app-1",
    "client-app-2",
];
/** A fourth server's pinned host key (a real ed25519 key; no host presents it: preview only). */
const EXTRA_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlsXFZnswmPwrED+C/B4UJ+T+TExLfq+id1AR3mIjqV";
/** What the engine says when a rule needs a value that only `pulumi up` computes. */
const DEFERRED = new RegExp(
    `^can't run policy '(\\S+)' from policy pack '${PACK}@v${PACK_VERSION.replace(/\./g, "\\.")}' during preview: ` +
        "string value at (\\S+) can't be known during preview\\n?$",
);

interface PolicyEvent {
    resourceUrn: string;
    message: string;
    policyName: string;
    policyPackName: string;
    policyPackVersion: string;
    enforcementLevel: string;
}
interface Summary {
    resourceUrn?: string;
    policyPackName: string;
    passed?: string[];
    failed?: string[];
}
interface LogEvent {
    policyLoadEvent?: object;
    policyEvent?: PolicyEvent;
    policyAnalyzeSummaryEvent?: Summary;
    policyAnalyzeStackSummaryEvent?: Summary;
    resourcePreEvent?: { metadata: { urn: string; type: string; new?: { custom: boolean; parent?: string } } };
}
interface PolicyPreview extends RunResult {
    readonly events: LogEvent[];
    readonly reports: PolicyEvent[];
    /** Per resource name: the rules that ran on it and passed, and those that reported. */
    readonly byResource: Map<string, { passed: string[]; failed: string[] }>;
}

const figures: string[] = [];
function figure(line: string): void {
    figures.push(line);
    log(`FIGURE ${line}`);
}

let logs = 0;
/** `pulumi preview --stack S --policy-pack policy` in the project, with the engine's event log. */
async function previewWithPack(project: PulumiProject): Promise<PolicyPreview> {
    const eventLog = path.join(path.dirname(project.dir), `policy-events-${++logs}.jsonl`);
    const run = await project.run([
        "preview",
        "--stack",
        project.stack,
        "--policy-pack",
        "policy",
        "--event-log",
        eventLog,
    ]);
    const events = fs.existsSync(eventLog)
        ? fs
              .readFileSync(eventLog, "utf8")
              .split("\n")
              .filter((l) => l.trim() !== "")
              .map((l) => JSON.parse(l) as LogEvent)
        : [];
    const byResource = new Map<string, { passed: string[]; failed: string[] }>();
    for (const s of events.map((e) => e.policyAnalyzeSummaryEvent).filter((s) => s !== undefined)) {
        assert.strictEqual(s.policyPackName, PACK);
        byResource.set(nameOf(s.resourceUrn ?? ""), { passed: s.passed ?? [], failed: s.failed ?? [] });
    }
    const reports = events.map((e) => e.policyEvent).filter((e) => e !== undefined);
    return { ...run, events, reports, byResource };
}

/** The pack was loaded by the engine and named in the output's policy section. */
function assertPackRan(preview: PolicyPreview): void {
    assert.ok(
        preview.events.some((e) => e.policyLoadEvent),
        `no policy pack was loaded:\n${preview.output.slice(-3000)}`,
    );
    assert.match(preview.output, new RegExp(`${PACK}@v${PACK_VERSION.replace(/\./g, "\\.")} \\(local: policy\\)`));
    assert.ok(
        preview.events.some((e) => e.policyAnalyzeStackSummaryEvent?.policyPackName === PACK),
        `the pack's stack rules did not run:\n${preview.output.slice(-3000)}`,
    );
}

function mandatory(preview: PolicyPreview): PolicyEvent[] {
    return preview.reports.filter((r) => r.enforcementLevel === "mandatory");
}

/** A project copy with the pack next to the program, as in the repository (engine: build.sh components). */
async function projectWithPack(
    stack: string,
    config: Record<string, string>,
    components = VM_ENGINE_COMPONENTS,
): Promise<PulumiProject> {
    const project = await PulumiProject.create(stack, config, components);
    fs.cpSync(path.join(REPO_ROOT, "policy"), path.join(project.dir, "policy"), { recursive: true });
    return project;
}

describe("the policy pack, run by the real Pulumi engine (pulumi preview --policy-pack policy)", function () {
    this.timeout(60 * 60_000);
    const prodConfig = stackFileConfig("prod").config;
    let prod: PulumiProject | undefined;
    let dev: PulumiProject | undefined;
    let firstPreview: PolicyPreview;
    let keyFile = "";

    after(() => {
        prod?.dispose();
        dev?.dispose();
        log("figures:\n  " + figures.join("\n  "));
    });

    it("1. Pulumi.prod.yaml, a new stack: the pack runs and reports no violation; the rules on the agents' stdin wait for values only pulumi up computes", async () => {
        prod = await projectWithPack("prod", prodConfig);
        firstPreview = await previewWithPack(prod);
        assert.strictEqual(firstPreview.code, 0, firstPreview.output.slice(-4000));
        assertPackRan(firstPreview);
        assert.deepStrictEqual(mandatory(firstPreview), []);
        // Every other report is the engine's advisory: the rule could not run on an unknown value.
        for (const r of firstPreview.reports) assert.match(r.message, DEFERRED, `${r.policyName}: ${r.message}`);
        const deferredOnAgent = firstPreview.reports.filter(
            (r) =>
                nameOf(r.resourceUrn) === "consul-vm-server-consul-server-1-agent" &&
                r.policyName === "consul-acl-default-deny",
        );
        assert.match(deferredOnAgent[0]?.message ?? "", /string value at \.stdin can't be known during preview/);
        figure(
            `policy 1. new prod stack: preview with the pack ${(firstPreview.ms / 1000).toFixed(1)} s, ` +
                `${firstPreview.byResource.size} resources analysed, 0 violations, ${firstPreview.reports.length} rule runs deferred to pulumi up`,
        );
    });

    it("2. prod with its keys, certificates and passwords applied: every resource rule runs on each agent's config and passes", async () => {
        assert.ok(prod && firstPreview, "scenario 1 did not run");
        // The tls and random resources (real providers, no host needed) and their parents, as
        // scripts/engine/preview.sh PREVIEW_APPLY_LOCAL=1 applies them; pulumi up needs a key file.
        const parents = new Map<string, string | undefined>();
        const local: string[] = [];
        for (const e of firstPreview.events) {
            const m = e.resourcePreEvent?.metadata;
            if (!m?.new) continue;
            parents.set(m.urn, m.new.parent);
            if (m.new.custom && /^(tls|random):/.test(m.type)) local.push(m.urn);
        }
        const targets = new Set<string>();
        for (const urn of local)
            for (let u: string | undefined = urn; u && !targets.has(u); u = parents.get(u)) targets.add(u);
        keyFile = path.join(path.dirname(prod.dir), "consul_ed25519");
        const { privateKey } = crypto.generateKeyPairSync("ed25519");
        fs.writeFileSync(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
        prod.setConfig({ ...prodConfig, sshPrivateKeyPath: keyFile });
        await prod.must([
            "up",
            "--stack",
            "prod",
            "--yes",
            "--skip-preview",
            ...[...targets].map((t) => `--target=${t}`),
        ]);

        const preview = await previewWithPack(prod);
        assert.strictEqual(preview.code, 0, preview.output.slice(-4000));
        assertPackRan(preview);
        assert.deepStrictEqual(mandatory(preview), []);
        for (const agent of AGENTS) {
            const ran = preview.byResource.get(`consul-vm-${agent}-agent`);
            assert.deepStrictEqual(ran, { passed: RESOURCE_RULES, failed: [] }, agent);
        }
        figure(
            `policy 2. prod, tls/random applied: preview ${(preview.ms / 1000).toFixed(1)} s, ` +
                `${RESOURCE_RULES.length} rules passed on each of ${AGENTS.length} agents, ${preview.reports.length} deferred`,
        );
        // Left over: the stack rules read every resource's properties, the commands' outputs included.
        for (const r of preview.reports) {
            assert.match(r.message, DEFERRED);
            assert.ok(
                stackPolicies.some((p) => p.name === r.policyName),
                r.policyName,
            );
        }
    });

    it("3. prod with ACLs off (consul:aclEnabled false, which the program's validation lets through): consul-acl-default-deny refuses each agent", async () => {
        assert.ok(prod && keyFile, "scenario 2 did not run");
        prod.setConfig({ ...prodConfig, sshPrivateKeyPath: keyFile, aclEnabled: "false" });
        const preview = await previewWithPack(prod);
        assert.notStrictEqual(preview.code, 0, "a mandatory violation did not fail the preview");
        assertPackRan(preview);
        assert.doesNotMatch(preview.output, /Invalid stack configuration/);
        const reports = mandatory(preview);
        assert.deepStrictEqual(
            reports.map((r) => `${r.policyName} ${nameOf(r.resourceUrn)}`).sort(),
            AGENTS.map((a) => `consul-acl-default-deny consul-vm-${a}-agent`).sort(),
        );
        for (const r of reports) {
            assert.strictEqual(
                r.message,
                "Outside dev/test stacks, ACLs are enabled with default_policy deny.\n" +
                    "stdin file /etc/consul.d/consul.json: acl.enabled is not true.\n",
            );
        }
        figure(`policy 3. prod, ACLs off: ${reports.length} mandatory violations, preview exit ${preview.code}`);
        assert.match(
            preview.output,
            /\[mandatory\] +consul-acl-default-deny +\(command:remote:Command: consul-vm-server-consul-server-1-agent\)/,
        );
    });

    it("4. an even server count: validation refuses serverCount 4 first; forced past it (the check removed, as a regression would), consul-odd-server-count refuses bootstrap_expect 4; a dead server (the lost-server runbook) keeps an odd count", async () => {
        assert.ok(prod && keyFile, "scenario 2 did not run");
        const fourServers = {
            ...prodConfig,
            sshPrivateKeyPath: keyFile,
            serverCount: "4",
            serverHosts: JSON.stringify([...JSON.parse(prodConfig.serverHosts), "consul-server-4=10.20.0.14"]),
            sshHostKeys: JSON.stringify([...JSON.parse(prodConfig.sshHostKeys), `consul-server-4=${EXTRA_HOST_KEY}`]),
        };
        prod.setConfig(fourServers);
        const refused = await previewWithPack(prod);
        assert.notStrictEqual(refused.code, 0);
        assert.match(refused.output, /consul:serverCount = 4: must be odd and between 1 and 7/);
        assert.deepStrictEqual(mandatory(refused), [], "the program's validation comes first");

        // The lost-server runbook's first step with one of three servers dead (components/recovery):
        // the survivors keep bootstrap_expect 3, so the pack lets the runbook's pulumi up through.
        prod.setConfig({ ...prodConfig, sshPrivateKeyPath: keyFile, deadHosts: '["consul-server-3"]' });
        const dead = await previewWithPack(prod);
        assertPackRan(dead);
        assert.deepStrictEqual(mandatory(dead), [], dead.output.slice(-3000));
        assert.strictEqual(dead.code, 0, dead.output.slice(-3000));

        // The program's own checks (serverCount, and the count of serverHosts) removed from this
        // copy, as a regression would: the pack is the backstop.
        const removed: [string, string, string][] = [
            [
                "common.ts",
                "serverCount < 1 || serverCount > 7 || serverCount % 2 === 0",
                "serverCount < 1 || serverCount > 7",
            ],
            ["vm.ts", "servers.length % 2 === 0 || servers.length > 7", "servers.length > 7"],
        ];
        const projectDir = prod.dir;
        const sources = removed.map(([file, check, without]) => {
            const full = path.join(projectDir, "components", "config", file);
            const source = fs.readFileSync(full, "utf8");
            assert.ok(source.includes(check), `components/config/${file} no longer has the check this test removes`);
            fs.writeFileSync(full, source.replace(check, without));
            return [full, source] as const;
        });
        try {
            prod.setConfig(fourServers);
            const preview = await previewWithPack(prod);
            assert.notStrictEqual(preview.code, 0, "a mandatory violation did not fail the preview");
            assertPackRan(preview);
            assert.doesNotMatch(preview.output, /Invalid stack configuration/);
            const reports = mandatory(preview);
            // The fourth server is new: its bundle holds its own certificate, which only pulumi up
            // makes, so its rule waits (deferred); the three deployed ones are refused now.
            const servers = AGENTS.filter((a) => a.startsWith("server-"));
            assert.deepStrictEqual(
                reports.map((r) => `${r.policyName} ${nameOf(r.resourceUrn)}`).sort(),
                servers.map((a) => `consul-odd-server-count consul-vm-${a}-agent`).sort(),
            );
            for (const r of reports) {
                assert.strictEqual(
                    r.message,
                    "An odd number of Consul servers (bootstrap_expect and StatefulSet replicas): an even count adds no failure tolerance.\n" +
                        "stdin file /etc/consul.d/consul.json: bootstrap_expect 4 is not an odd count.\n",
                );
            }
            figure(
                `policy 4. prod, 4 servers past validation: ${reports.length} mandatory violations (bootstrap_expect 4)`,
            );
        } finally {
            for (const [full, source] of sources) fs.writeFileSync(full, source);
        }
    });

    it("5. Pulumi.dev.yaml (Kubernetes; the real provider, as in scripts/engine/preview.sh): no violation, every resource rule passes on the agents' ConfigMaps and workloads", async () => {
        dev = await projectWithPack("dev", stackFileConfig("dev").config, [...VM_ENGINE_COMPONENTS, "kubernetes"]);
        // The real Kubernetes provider (build.sh kubernetes) renders YAML instead of contacting a
        // cluster, as in preview.sh; tests/engine/kubernetes-preview.e2e.ts previews against one.
        const kubernetes = dev.installedPlugin("kubernetes", kubernetesSdkVersion());
        const stub = path.join(engineCacheDir(), "bin", "pulumi-resource-stub");
        const digest = (f: string) => crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex");
        assert.notStrictEqual(digest(kubernetes), digest(stub), "the preview-only stub stands in for kubernetes");
        const rendered = path.join(path.dirname(dev.dir), "rendered");
        await dev.must(["config", "set", "--stack", "dev", "kubernetes:renderYamlToDirectory", rendered]);
        const preview = await previewWithPack(dev);
        assert.strictEqual(preview.code, 0, preview.output.slice(-4000));
        assertPackRan(preview);
        assert.deepStrictEqual(mandatory(preview), []);
        for (const name of [
            "consul-servers-config",
            "consul-servers-statefulset",
            "consul-clients-config",
            "consul-clients-daemonset",
        ]) {
            assert.deepStrictEqual(preview.byResource.get(name), { passed: RESOURCE_RULES, failed: [] }, name);
        }
        for (const r of preview.reports) assert.match(r.message, DEFERRED, `${r.policyName}: ${r.message}`);
        figure(
            `policy 5. dev: preview ${(preview.ms / 1000).toFixed(1)} s, ${preview.byResource.size} resources analysed, ` +
                `0 violations, ${preview.reports.length} deferred`,
        );
    });
});
