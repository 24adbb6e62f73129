// The sandbox's Pulumi.sandbox.yaml is a stack file the program accepts as it is: parsed as Pulumi
// parses it, then through the program's own config validation, with real host keys.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import { parseSettings } from "../../components/config";
import { renderStackFile, SandboxHost, STACK_FILE_MARKER } from "../../scripts/sandbox/stack-file";

describe("sandbox stack file", () => {
    let dir = "";
    let hosts: SandboxHost[] = [];

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandbox-stack-"));
        hosts = [1, 2, 3, 4, 5].map((i) => {
            const key = path.join(dir, `host-${i}`);
            const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
            assert.strictEqual(r.status, 0, String(r.stderr));
            const pub = fs.readFileSync(`${key}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
            return { name: `consul-host-${i}`, address: `10.213.7.${10 + i}`, hostKey: pub };
        });
        // The key hosts.sh authorises (an ed25519 private key, as the program checks).
        fs.copyFileSync(path.join(dir, "host-1"), path.join(dir, "ssh_key"));
    });

    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    function rendered(): string {
        return renderStackFile({
            servers: hosts.slice(0, 3),
            clients: hosts.slice(3),
            sshPrivateKeyPath: path.join(dir, "ssh_key"),
            consulVersion: "1.16.3",
        });
    }

    it("starts with the marker that down looks for", () => {
        assert.strictEqual(rendered().split("\n")[0], STACK_FILE_MARKER);
    });

    it("is accepted by the program's validation: a vm stack on the hosts, keys pinned, Consul preinstalled", () => {
        const doc = yaml.load(rendered()) as { config: Record<string, unknown> };
        const raw: Record<string, string> = {};
        for (const [k, v] of Object.entries(doc.config)) {
            assert.ok(k.startsWith("consul:"), k);
            raw[k.slice("consul:".length)] = typeof v === "string" ? v : JSON.stringify(v);
        }
        const settings = parseSettings(raw, "consul", "sandbox");
        assert.strictEqual(settings.topology, "vm");
        assert.deepStrictEqual(
            settings.vm?.servers.map((s) => [s.name, s.address]),
            hosts.slice(0, 3).map((h) => [h.name, h.address]),
        );
        assert.deepStrictEqual(
            settings.vm?.clients.map((s) => s.name),
            hosts.slice(3).map((h) => h.name),
        );
        assert.deepStrictEqual({ ...settings.vm?.hostKeys }, Object.fromEntries(hosts.map((h) => [h.name, h.hostKey])));
        assert.strictEqual(settings.vm?.installMode, "preinstalled");
        assert.strictEqual(settings.acl.defaultPolicy, "deny");
    });
});
