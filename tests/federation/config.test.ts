// WAN federation (issue 15), what a stack checks before anything is deployed: the config one stack
// can check alone, the example stack files, and the checks on the primary's export (one message
// per misfit, naming the key, secrets never shown).

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { ConfigError, parseSettings } from "../../components/config";
import { checkFederationExport, FederationExport, SecondaryFacts } from "../../components/federation";
import { projectDefaults, REPO_ROOT, withOperatorHome } from "../mocks";
import { prodStackWithHosts } from "../vm/fixtures";

const PRIMARY_STACK = "organization/consul/dc1";

function problemsOf(raw: Record<string, string>): string[] {
    try {
        parseSettings(raw, "consul", "prod", { secretKeys: new Set() });
    } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return [...err.problems];
    }
    return [];
}

/** An example stack file's config, keys without the project prefix, as Pulumi hands it over. */
function exampleConfig(stack: string): Record<string, string> {
    const file = path.join(REPO_ROOT, "examples", "federation", `Pulumi.${stack}.yaml`);
    const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config: Record<string, unknown> };
    return Object.fromEntries(
        Object.entries(doc.config).map(([k, v]) => [
            k.replace(/^consul:/, ""),
            typeof v === "string" ? v : JSON.stringify(v),
        ]),
    );
}

describe("federation config (what one stack can check alone)", () => {
    let operator: ReturnType<typeof withOperatorHome>;
    before(() => (operator = withOperatorHome()));
    after(() => operator.restore());
    const base = () => prodStackWithHosts(3, 1);

    it("is off by default: the settings have no federation", () => {
        assert.ok(!("federation" in parseSettings(base(), "consul", "prod")));
        assert.ok(!("federation" in parseSettings({ ...base(), federationSecondaries: "[]" }, "consul", "prod")));
    });

    it("reads a primary's secondaries, sorted, and a secondary's primary stack", () => {
        const primary = parseSettings({ ...base(), federationSecondaries: '["dc3","dc2"]' }, "consul", "prod");
        assert.deepStrictEqual(primary.federation, { role: "primary", secondaries: ["dc2", "dc3"] });
        const secondary = parseSettings(
            { ...base(), datacenter: "dc2", federationPrimaryStack: PRIMARY_STACK },
            "consul",
            "prod",
        );
        assert.deepStrictEqual(secondary.federation, { role: "secondary", primaryStack: PRIMARY_STACK });
    });

    it("refuses bad, own and repeated secondary names, each with its fix", () => {
        assert.deepStrictEqual(problemsOf({ ...base(), federationSecondaries: '["DC_2","dc1","dc3","dc3"]' }), [
            `consul:federationSecondaries = "DC_2": must be a datacenter name: a DNS label (a-z, 0-9, '-').`,
            `consul:federationSecondaries = "dc1": is this stack's own datacenter (consul:datacenter); list only the secondary datacenters' names.`,
            `consul:federationSecondaries = "dc3": is listed twice; list each datacenter once.`,
        ]);
    });

    it("refuses a gossip key or CA keeper in a secondary: both come from the primary", () => {
        const problems = problemsOf({
            ...base(),
            datacenter: "dc2",
            federationPrimaryStack: PRIMARY_STACK,
            gossipKeyKeeper: "2",
            caKeeper: "next",
        });
        // Pulumi.yaml's defaults, which the engine passes as if set, are no override.
        const withDefaults = {
            ...projectDefaults(),
            ...base(),
            datacenter: "dc2",
            federationPrimaryStack: PRIMARY_STACK,
        };
        assert.deepStrictEqual(problemsOf(withDefaults), []);
        assert.deepStrictEqual(problems, [
            `consul:gossipKeyKeeper = "2": is set in a secondary datacenter, whose gossip key comes from the primary stack (${PRIMARY_STACK}); remove it here and change it in the primary.`,
            `consul:caKeeper = "next": is set in a secondary datacenter, whose CA comes from the primary stack (${PRIMARY_STACK}); remove it here and change it in the primary.`,
        ]);
    });

    it("refuses both roles at once, itself as primary, and another topology", () => {
        assert.deepStrictEqual(
            problemsOf({ ...base(), federationSecondaries: '["dc2"]', federationPrimaryStack: PRIMARY_STACK }),
            [
                `consul:federationPrimaryStack = "${PRIMARY_STACK}": a stack is either the primary (consul:federationSecondaries) or a secondary (federationPrimaryStack), not both; remove one.`,
            ],
        );
        assert.deepStrictEqual(problemsOf({ ...base(), federationPrimaryStack: "organization/consul/prod" }), [
            `consul:federationPrimaryStack = "organization/consul/prod": names this stack itself; name the primary datacenter's stack.`,
        ]);
        assert.deepStrictEqual(problemsOf({ topology: "kubernetes", federationSecondaries: '["dc2"]' }), [
            `consul:federationSecondaries = ["dc2"]: WAN federation is built for the vm topology so far, not kubernetes (Kubernetes servers need a WAN-reachable address first); remove it or use topology vm.`,
        ]);
    });
});

describe("the example stack files (examples/federation)", () => {
    let operator: ReturnType<typeof withOperatorHome>;
    before(() => (operator = withOperatorHome()));
    after(() => operator.restore());

    it("are a valid primary and a secondary that names it", () => {
        const dc1 = parseSettings(exampleConfig("dc1"), "consul", "dc1");
        const dc2 = parseSettings(exampleConfig("dc2"), "consul", "dc2");
        assert.deepStrictEqual(dc1.federation, { role: "primary", secondaries: ["dc2"] });
        assert.deepStrictEqual(dc2.federation, { role: "secondary", primaryStack: "organization/consul/dc1" });
        assert.strictEqual(dc2.domain, dc1.domain);
        assert.strictEqual(dc2.acl.enabled, dc1.acl.enabled);
    });
});

describe("the checks on the primary's federation output", () => {
    const exported: FederationExport = {
        datacenter: "dc1",
        domain: "consul",
        aclEnabled: true,
        caCertPem: "ROOT",
        gossipKey: "GOSSIP-SECRET",
        replicationToken: "TOKEN-SECRET",
        wanJoin: ["10.0.0.1:8302"],
        intermediates: { dc2: { certPem: "INTER", keyPem: "INTER-KEY-SECRET" } },
    };
    const own: SecondaryFacts = {
        project: "consul",
        datacenter: "dc2",
        domain: "consul",
        aclEnabled: true,
        primaryStack: PRIMARY_STACK,
    };

    it("takes the shared parts and this datacenter's intermediate", () => {
        const { material, problems } = checkFederationExport(exported, own);
        assert.deepStrictEqual(problems, []);
        assert.deepStrictEqual(material, {
            primaryDatacenter: "dc1",
            caCertPem: "ROOT",
            gossipKey: "GOSSIP-SECRET",
            replicationToken: "TOKEN-SECRET",
            wanJoin: ["10.0.0.1:8302"],
            intermediate: { certPem: "INTER", keyPem: "INTER-KEY-SECRET" },
        });
    });

    it("names the primary's config when it exports nothing, or nothing for this datacenter", () => {
        for (const empty of [{}, undefined, { ...exported, intermediates: {} }]) {
            assert.deepStrictEqual(checkFederationExport(empty, own).problems, [
                `consul:federationPrimaryStack = "${PRIMARY_STACK}": the stack exports no federation material (its federation output is empty or missing); add "dc2" to consul:federationSecondaries there, run pulumi up on it, then run this stack's.`,
            ]);
        }
        const other = { ...exported, intermediates: { dc3: exported.intermediates.dc2 } };
        assert.deepStrictEqual(checkFederationExport(other, own).problems, [
            `consul:federationPrimaryStack = "${PRIMARY_STACK}": the stack federates dc3, not dc2; add "dc2" to consul:federationSecondaries there and run pulumi up on it first.`,
        ]);
    });

    it("refuses the primary's datacenter name, another domain and ACLs on one side only, secrets unshown", () => {
        const { material, problems } = checkFederationExport(
            { ...exported, intermediates: { dc1: exported.intermediates.dc2 }, domain: "example", aclEnabled: false },
            { ...own, datacenter: "dc1" },
        );
        assert.strictEqual(material, undefined);
        assert.deepStrictEqual(problems, [
            `consul:datacenter = "dc1": is the primary's datacenter name too (stack ${PRIMARY_STACK}); every datacenter of a federation needs its own name.`,
            `consul:domain = "consul": differs from the primary's (example, stack ${PRIMARY_STACK}); federated datacenters share one domain, so set it to example.`,
            `consul:aclEnabled = true: the primary (stack ${PRIMARY_STACK}) has ACLs off; federated datacenters need ACLs on in all or none, so set it to false.`,
        ]);
        assert.ok(!problems.join("\n").includes("SECRET"));
    });
});
