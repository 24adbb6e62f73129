// A measured `pulumi preview` of the VM topology through the real engine (issue 17, "Scale"): the
// CLI, language host and providers that scripts/engine/build.sh builds (what is missing is built
// first, as the engine suite does), on a temporary copy of the project (tests/engine/pulumi-cli.ts:
// file backend, passphrase secrets, nothing outside a temporary directory written).
//
// The stack is the prod stack's settings with 3 servers + N clients at documentation addresses
// (scripts/bench-vm.ts's vmConfig), every host key pinned, and a throw-away SSH key: a preview plans
// the commands and contacts no host. It prints one FIGURE line per client count: the preview's
// wall time (the CLI started to exited) and that time per host.
// Usage: npx ts-node --transpile-only scripts/engine/bench-preview.ts [clients...]   (default: 100)
// `npm run bench` runs it for 100 clients when the engine is built.

import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { vmConfig } from "../bench-vm";
import { PulumiProject } from "../../tests/engine/pulumi-cli";

const SERVERS = 3;

async function previewFigure(clients: number): Promise<string> {
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-bench-key-"));
    const key = path.join(keyDir, "id_ed25519");
    const { privateKey } = crypto.generateKeyPairSync("ed25519");
    fs.writeFileSync(key, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    let project: PulumiProject | undefined;
    try {
        project = await PulumiProject.create("bench", { ...vmConfig(SERVERS, clients), sshPrivateKeyPath: key });
        const r = await project.run(["preview", "--stack", "bench"]);
        if (r.code !== 0) throw new Error(`pulumi preview exited ${r.code}:\n${r.output.slice(-4000)}`);
        const toCreate = /\+ (\d+) to create/.exec(r.output)?.[1] ?? "?";
        const hosts = SERVERS + clients;
        return (
            `real-engine pulumi preview, ${SERVERS} servers + ${clients} clients: ${(r.ms / 1000).toFixed(1)} s ` +
            `(${r.ms} ms), ${(r.ms / 1000 / hosts).toFixed(2)} s per host; ${toCreate} resources to create`
        );
    } finally {
        project?.dispose();
        fs.rmSync(keyDir, { recursive: true, force: true });
    }
}

async function main(): Promise<void> {
    const counts = process.argv.slice(2).map(Number);
    for (const clients of counts.length > 0 ? counts : [100]) {
        if (!Number.isInteger(clients) || clients < 0) throw new Error(`not a client count: ${clients}`);
        console.log(`FIGURE ${await previewFigure(clients)}`);
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
