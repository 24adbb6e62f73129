// The Grafana dashboard (dashboards/consul.json): importable (a datasource input, every panel on it),
// and every query parses as PromQL: promtool (from the Debian prometheus package,
// scripts/prometheus.sh) checks a rules file holding one recording rule per query. A broken query is
// shown to fail the same check. Its metric names are the series Consul 1.16's agents export (the
// metrics e2e suite queries each one against a live Prometheus).

import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderYaml } from "../../components/metrics";
import { Dashboard, DASHBOARD, dashboardQueries, promtool } from "./dashboard";

/** promtool check rules on one recording rule per query; its exit status and output. */
function checkRules(tool: string, queries: readonly string[]): { status: number | null; output: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-dashboard-"));
    try {
        const rules = {
            groups: [
                { name: "dashboard", rules: queries.map((expr, i) => ({ record: `dashboard:query_${i + 1}`, expr })) },
            ],
        };
        const file = path.join(dir, "rules.yml");
        fs.writeFileSync(file, renderYaml(rules));
        const r = spawnSync(tool, ["check", "rules", file], { encoding: "utf8" });
        return { status: r.status, output: r.stdout + r.stderr };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

describe("the Grafana dashboard", function () {
    this.timeout(300_000);
    let tool: string;
    before(() => (tool = promtool()));

    it("is importable: one Prometheus datasource input, every panel and query on it", () => {
        const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, "utf8")) as Dashboard;
        assert.deepStrictEqual(
            dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]),
            [["DS_PROMETHEUS", "datasource", "prometheus"]],
        );
        assert.strictEqual(dashboard.uid, "consul-pulumi");
        assert.deepStrictEqual(
            dashboard.panels.map((p) => p.id),
            dashboard.panels.map((_, i) => i + 1),
        );
        for (const panel of dashboard.panels) {
            assert.strictEqual(panel.datasource.uid, "${DS_PROMETHEUS}", panel.title);
            assert.ok(panel.targets.length > 0, panel.title);
            for (const t of panel.targets) assert.strictEqual(t.datasource.uid, "${DS_PROMETHEUS}", panel.title);
        }
    });

    it("every query parses with promtool (check rules)", () => {
        const queries = dashboardQueries();
        assert.ok(queries.length >= 10, `${queries.length} queries`);
        const version = execFileSync(tool, ["--version"], { encoding: "utf8" }).split("\n")[0];
        const r = checkRules(tool, queries);
        assert.strictEqual(r.status, 0, `${version}:\n${r.output}`);
        assert.match(r.output, new RegExp(`SUCCESS: ${queries.length} rules found`));
    });

    it("a query that does not parse fails the same check, naming the error", () => {
        const r = checkRules(tool, [...dashboardQueries(), "sum by (instance (consul_raft_peers)"]);
        assert.strictEqual(r.status, 1, r.output);
        assert.match(r.output, /"dashboard:query_\d+": could not parse expression: .*parse error/);
    });

    it("uses only the scrape config's jobs and Consul's own series", () => {
        for (const q of dashboardQueries()) {
            const names = q.match(/\b[a-z_:][a-zA-Z0-9_:]*(?=[{[\s)]|$)/g) ?? [];
            const series = names.filter((n) => n.startsWith("consul_") || n === "up");
            assert.ok(series.length > 0, `no series in ${q}`);
        }
        assert.match(dashboardQueries()[0], /job=~"consul-servers\|consul-clients"/);
    });
});
