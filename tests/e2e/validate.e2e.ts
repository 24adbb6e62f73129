// `consul validate`, the real binary of the release the stacks run, on the files the program renders
// for a VM server and client. It lives in the e2e suite because that suite builds the binary first
// (infra.ensureArtifacts); the unit suite, which runs before it on a cold machine, has none.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Settings } from "../../components/config";
import { DEFAULT_CONSUL_VERSION } from "../../components/config/schema";
import { PATHS } from "../../components/vm/paths";
import { nodeFiles } from "../../components/vm";
import { sampleMaterial, sampleVmSettings } from "../vm/fixtures";
import { Artifacts, ensureArtifacts } from "./infra";

describe("consul validate on the rendered VM agent config", function () {
    this.timeout(45 * 60_000);
    let artifacts: Artifacts;
    let tmp: string;
    let settings: Settings;

    before(async () => {
        artifacts = await ensureArtifacts();
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "consul-validate-"));
        settings = sampleVmSettings();
    });
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it("the suite's binary is the release the stacks run by default", () => {
        assert.strictEqual(artifacts.consulVersion, DEFAULT_CONSUL_VERSION);
    });

    for (const role of ["server", "client"] as const) {
        it(`accepts the ${role}'s main config, startup-only file and secret fragment together`, () => {
            const vm = settings.vm as NonNullable<Settings["vm"]>;
            const material = sampleMaterial();
            const host = role === "server" ? vm.servers[0] : vm.clients[0];
            const files = Object.fromEntries(
                nodeFiles(settings, role, host, vm.servers, material).map((f) => [f.path, f.content]),
            );
            const dir = fs.mkdtempSync(path.join(tmp, role));
            const written = [PATHS.mainConfig, PATHS.joinConfig, PATHS.secretConfig].map((p) => {
                const file = path.join(dir, path.basename(p));
                fs.writeFileSync(file, files[p]);
                return file;
            });
            // Only the data dir moves (validate checks that it exists); the rest is as rendered.
            fs.mkdirSync(path.join(dir, "data"));
            const dataDir = path.join(dir, "zz-test-data-dir.json");
            fs.writeFileSync(dataDir, JSON.stringify({ data_dir: path.join(dir, "data") }));
            const result = spawnSync(artifacts.consulBinary, ["validate", ...written, dataDir], { encoding: "utf8" });
            assert.strictEqual(result.status, 0, result.stdout + result.stderr);
            assert.match(result.stdout, /Configuration is valid/);
        });
    }
});
