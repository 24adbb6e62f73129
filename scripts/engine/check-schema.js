// Checks a generated provider schema against the npm SDK the program uses.
// Usage: node check-schema.js <schema.json> <node_modules/@pulumi/NAME>
// For every resource and function of the SDK: the type token exists in the schema, the property
// names the SDK sends and reads are the schema's, and the outputs the SDK marks secret are secret
// in the schema. Prints one line per difference and exits 1 if any.
"use strict";
const fs = require("fs");
const path = require("path");

const schema = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const sdkDir = process.argv[3];
const problems = [];
let checked = 0;

for (const file of fs.readdirSync(sdkDir).filter((f) => f.endsWith(".js"))) {
    const js = fs.readFileSync(path.join(sdkDir, file), "utf8");
    const resourceToken = (js.match(/__pulumiType = '([^']+)'/) || [])[1];
    for (const [, fn] of js.matchAll(/invoke\("([^"]+)"/g)) {
        checked++;
        if (!(schema.functions || {})[fn]) problems.push(`function ${fn} (${file}) is not in the schema`);
    }
    if (!resourceToken || !resourceToken.includes(":")) continue; // the provider resource itself
    checked++;
    const resource = (schema.resources || {})[resourceToken];
    if (!resource) {
        problems.push(`resource ${resourceToken} (${file}) is not in the schema`);
        continue;
    }
    const known = new Set([...Object.keys(resource.properties || {}), ...Object.keys(resource.inputProperties || {})]);
    for (const [, prop] of js.matchAll(/resourceInputs\["(\w+)"\]/g)) {
        if (!known.has(prop)) problems.push(`${resourceToken}: the SDK's property ${prop} is not in the schema`);
    }
    const sdkSecrets = ((js.match(/additionalSecretOutputs: \[([^\]]*)\]/) || [])[1] || "")
        .split(",")
        .map((s) => s.trim().replace(/"/g, ""))
        .filter(Boolean);
    for (const prop of sdkSecrets) {
        if (!(resource.properties || {})[prop] || !resource.properties[prop].secret) {
            problems.push(`${resourceToken}: ${prop} is secret in the SDK but not in the schema`);
        }
    }
}

for (const p of problems) console.log(p);
console.log(`${path.basename(sdkDir)}: ${checked} resources and functions checked, ${problems.length} differences`);
process.exit(problems.length > 0 || checked === 0 ? 1 : 0);
