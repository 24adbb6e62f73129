// The dashboard's queries, and the Debian package's promtool, for the dashboard test and the
// metrics e2e suite (which runs every query against a live Prometheus).

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../mocks";

export const DASHBOARD = path.join(REPO_ROOT, "dashboards", "consul.json");

export interface Dashboard {
    readonly __inputs: { name: string; type: string; pluginId: string }[];
    readonly title: string;
    readonly uid: string;
    readonly panels: {
        id: number;
        title: string;
        datasource: { uid: string };
        targets: { expr: string; refId: string; datasource: { uid: string } }[];
    }[];
}

export function dashboardQueries(): string[] {
    const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, "utf8")) as Dashboard;
    return dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
}

/** The Debian package's promtool, unpacked once into the cache. */
export function promtool(): string {
    const r = spawnSync("bash", [path.join(REPO_ROOT, "scripts", "prometheus.sh")], { encoding: "utf8" });
    assert.strictEqual(r.status, 0, `scripts/prometheus.sh failed: ${r.stderr}`);
    return path.join(r.stdout.trim().split("\n").pop() as string, "promtool");
}
