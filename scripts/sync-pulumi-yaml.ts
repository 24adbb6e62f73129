// Rewrites the `config:` section of Pulumi.yaml from components/config-schema.ts, so the CLI
// (types, defaults, `pulumi config` help) and the program always agree. A test checks they do.
// Usage: npx ts-node scripts/sync-pulumi-yaml.ts [--check]

import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { configSchema } from "../components/config-schema";

export const PULUMI_YAML = path.join(__dirname, "..", "Pulumi.yaml");

export function schemaAsProjectConfig(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries(configSchema)) {
        const entry: Record<string, unknown> = { type: spec.type, description: spec.description };
        if (spec.type === "array") entry.items = { type: "string" };
        if ("default" in spec) entry.default = spec.default;
        if ("secret" in spec && spec.secret) entry.secret = true;
        out[key] = entry;
    }
    return out;
}

if (require.main === module) {
    const project = yaml.load(fs.readFileSync(PULUMI_YAML, "utf8")) as Record<string, unknown>;
    const wanted = schemaAsProjectConfig();
    if (process.argv.includes("--check")) {
        const same = JSON.stringify(project.config) === JSON.stringify(wanted);
        console.log(
            same
                ? "Pulumi.yaml config matches the schema"
                : "Pulumi.yaml config differs: run npx ts-node scripts/sync-pulumi-yaml.ts",
        );
        process.exit(same ? 0 : 1);
    }
    project.config = wanted;
    fs.writeFileSync(PULUMI_YAML, yaml.dump(project, { lineWidth: 120, noRefs: true }));
    console.log(`wrote ${Object.keys(wanted).length} config keys to Pulumi.yaml`);
}
