import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { consulUnit, ConsulUnitOptions, renderUnit } from "../../components/vm/systemd";

const base: ConsulUnitOptions = {
    role: "server",
    nodeName: "consul-server-1",
    binary: "/usr/local/bin/consul",
    configFiles: ["/etc/consul.d/consul.json", "/etc/consul.d/secrets.json"],
    dataDir: "/var/lib/consul",
    hasPeerToJoin: true,
    lowestPort: 8300,
};

/** Lines `Key=value` of one section. */
function directives(text: string, section: string): [string, string][] {
    const out: [string, string][] = [];
    let current = "";
    for (const line of text.split("\n")) {
        const header = /^\[(.+)\]$/.exec(line);
        if (header) current = header[1];
        else if (current === section && line.includes("=")) {
            const eq = line.indexOf("=");
            out.push([line.slice(0, eq), line.slice(eq + 1)]);
        }
    }
    return out;
}

function values(text: string, section: string, key: string): string[] {
    return directives(text, section)
        .filter(([k]) => k === key)
        .map(([, v]) => v);
}

/**
 * `systemd-analyze verify` in a throwaway root that holds the stock units, /bin/kill and a stub at
 * the unit's real ExecStart path, so the check resolves the same paths as on a host.
 */
function verify(unitText: string): { status: number | null; output: string } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "consul-unit-"));
    try {
        for (const dir of ["usr/local/bin", "usr/bin", "etc/systemd/system", "var/lib/consul"]) {
            fs.mkdirSync(path.join(root, dir), { recursive: true });
        }
        fs.symlinkSync("usr/bin", path.join(root, "bin"));
        fs.symlinkSync("usr/lib", path.join(root, "lib"));
        fs.cpSync("/usr/lib/systemd/system", path.join(root, "usr/lib/systemd/system"), { recursive: true });
        fs.writeFileSync(path.join(root, "usr/local/bin/consul"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
        fs.copyFileSync("/usr/bin/kill", path.join(root, "usr/bin/kill"));
        fs.chmodSync(path.join(root, "usr/bin/kill"), 0o755);
        fs.writeFileSync(path.join(root, "etc/systemd/system/consul.service"), unitText);
        const result = spawnSync(
            "systemd-analyze",
            ["verify", "--man=no", `--root=${root}`, "/etc/systemd/system/consul.service"],
            { encoding: "utf8" },
        );
        return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
    } finally {
        fs.rmSync(root, { recursive: true, force: true });
    }
}

const hasSystemdAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;

describe("systemd unit rendering", () => {
    it("renders sections in order, arrays as repeated directives, booleans as yes/no", () => {
        const text = renderUnit({
            Unit: { Description: "x", ConditionFileNotEmpty: ["/a", "/b"] },
            Service: { NoNewPrivileges: true, PrivateTmp: false, LimitNOFILE: 65536, Skipped: undefined },
            Install: { WantedBy: "multi-user.target" },
        });
        assert.strictEqual(
            text,
            "[Unit]\nDescription=x\nConditionFileNotEmpty=/a\nConditionFileNotEmpty=/b\n\n" +
                "[Service]\nNoNewPrivileges=yes\nPrivateTmp=no\nLimitNOFILE=65536\n\n" +
                "[Install]\nWantedBy=multi-user.target\n",
        );
    });

    it("refuses values that would break the format", () => {
        const bad = (value: string) => () => renderUnit({ Unit: { Description: value }, Service: {}, Install: {} });
        assert.throws(bad("two\nlines"), /line break/);
        assert.throws(bad("trailing\\"), /backslash/);
        assert.throws(() => renderUnit({ Unit: { "Bad Key": "x" }, Service: {}, Install: {} }), /directive name/);
    });

    it("matches seed 002's unit: validate before start, HUP reload, KillMode=process, restart on failure", () => {
        const text = renderUnit(consulUnit(base));
        assert.deepStrictEqual(values(text, "Service", "ExecStartPre"), [
            "/usr/local/bin/consul validate /etc/consul.d/consul.json /etc/consul.d/secrets.json",
        ]);
        assert.deepStrictEqual(values(text, "Service", "ExecStart"), [
            "/usr/local/bin/consul agent -config-file=/etc/consul.d/consul.json -config-file=/etc/consul.d/secrets.json",
        ]);
        assert.deepStrictEqual(values(text, "Service", "ExecReload"), ["/bin/kill --signal HUP $MAINPID"]);
        assert.deepStrictEqual(values(text, "Service", "KillMode"), ["process"]);
        assert.deepStrictEqual(values(text, "Service", "Restart"), ["on-failure"]);
        assert.deepStrictEqual(values(text, "Service", "LimitNOFILE"), ["65536"]);
        assert.deepStrictEqual(values(text, "Service", "User"), ["consul"]);
    });

    it("starts only when the files it loads exist (the real names, not consul.hcl)", () => {
        const text = renderUnit(consulUnit(base));
        assert.deepStrictEqual(values(text, "Unit", "ConditionFileNotEmpty"), [...base.configFiles]);
        assert.ok(!text.includes("consul.hcl"));
    });

    it("is Type=notify only when the agent has a peer to join", () => {
        assert.deepStrictEqual(values(renderUnit(consulUnit(base)), "Service", "Type"), ["notify"]);
        const lone = renderUnit(consulUnit({ ...base, hasPeerToJoin: false }));
        assert.deepStrictEqual(values(lone, "Service", "Type"), ["exec"]);
    });

    it("is hardened, with no capabilities unless a port below 1024 is used", () => {
        const text = renderUnit(consulUnit(base));
        for (const [key, value] of [
            ["NoNewPrivileges", "yes"],
            ["ProtectSystem", "strict"],
            ["ReadWritePaths", "/var/lib/consul"],
            ["ProtectHome", "yes"],
            ["PrivateTmp", "yes"],
            ["CapabilityBoundingSet", ""],
            ["AmbientCapabilities", ""],
        ]) {
            assert.deepStrictEqual(values(text, "Service", key), [value], key);
        }
        const dns53 = renderUnit(consulUnit({ ...base, lowestPort: 53 }));
        assert.deepStrictEqual(values(dns53, "Service", "CapabilityBoundingSet"), ["CAP_NET_BIND_SERVICE"]);
        assert.deepStrictEqual(values(dns53, "Service", "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
    });

    describe("systemd-analyze verify", function () {
        this.timeout(60000);
        before(function () {
            if (!hasSystemdAnalyze)
                throw new Error("systemd-analyze is not installed: run scripts/ensure-tools.sh (npm test does)");
        });
        const variants: [string, ConsulUnitOptions][] = [
            ["server with peers", base],
            ["lone server", { ...base, hasPeerToJoin: false }],
            ["client", { ...base, role: "client", nodeName: "app-1" }],
            ["agent on a privileged DNS port", { ...base, lowestPort: 53 }],
        ];
        for (const [what, options] of variants) {
            it(`passes with no warning: ${what}`, () => {
                const result = verify(renderUnit(consulUnit(options)));
                assert.strictEqual(result.status, 0, result.output);
                assert.strictEqual(result.output, "");
            });
        }
        it("is an honest check: it fails on a unit whose ExecStart is missing", () => {
            const text = renderUnit(consulUnit({ ...base, binary: "/usr/local/bin/not-there" }));
            const result = verify(text);
            assert.notStrictEqual(result.status, 0);
            assert.match(result.output, /not-there/);
        });
    });
});
