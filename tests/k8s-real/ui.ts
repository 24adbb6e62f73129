// Scenario 7 of issue 14: the Consul UI in a real browser. Debian's Chromium, driven by
// playwright-core, opens the UI through the consul-ui Service (kubectl port-forward) by the
// Service's own name, with our CA trusted the way Chromium trusts a CA on Linux (the user's NSS
// database), logs in with a token and sees the servers on the Nodes page. Without the CA the same
// page is refused with Chromium's certificate error: the trust is what lets it in.

import * as assert from "assert";
import * as childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";
import { chromium } from "playwright-core";
import { UI_SERVICE_NAME } from "../../components/agent/names";
import { UI_SERVICE_PORT } from "../../components/kubernetes/manifests";
import { REPO_ROOT } from "../mocks";
import { KubeNode } from "./node";
import { seconds } from "./workloads";

export interface UiScenario {
    readonly namespace: string;
    readonly datacenter: string;
    readonly servers: readonly string[];
    readonly managementToken: string;
    /** Where the browsers' homes go (removed with it). */
    readonly workDir: string;
    /** Where the screenshot goes (kept: test-output/k8s-real under the repository). */
    readonly outDir: string;
}

/** Debian's Chromium (scripts/k8s/chromium.sh installs it and certutil when missing). */
function chromiumPath(): string {
    const r = childProcess.spawnSync("bash", [path.join(REPO_ROOT, "scripts/k8s/chromium.sh")], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
    });
    const bin = r.stdout.trim().split("\n").pop() ?? "";
    if (r.status !== 0 || !fs.existsSync(bin)) throw new Error(`scripts/k8s/chromium.sh failed (exit ${r.status})`);
    return bin;
}

/** `kubectl port-forward` to `target` on a free port of 127.0.0.1, once kubectl says it listens. */
function portForward(node: KubeNode, ns: string, target: string, port: number) {
    const child = childProcess.spawn(
        node.kubectlBin,
        ["--kubeconfig", node.kubeconfigPath, "port-forward", "-n", ns, target, `0:${port}`],
        { stdio: ["ignore", "pipe", "pipe"] },
    );
    return new Promise<{ port: number; child: childProcess.ChildProcess }>((resolve, reject) => {
        let output = "";
        const timer = setTimeout(() => {
            child.kill();
            reject(new Error(`kubectl port-forward ${target}: no port after 30 s: ${output}`));
        }, 30_000);
        const read = (chunk: Buffer) => {
            output += chunk.toString();
            const match = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(output);
            if (match) {
                clearTimeout(timer);
                resolve({ port: Number(match[1]), child });
            }
        };
        child.stdout.on("data", read);
        child.stderr.on("data", read);
        child.on("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`kubectl port-forward ${target} exited ${code}: ${output}`));
        });
    });
}

/** A HOME whose NSS database (where Chromium on Linux reads user CAs) trusts `caPem` for TLS, or nothing. */
function browserHome(dir: string, caPem?: string): string {
    const nssdb = path.join(dir, ".pki", "nssdb");
    fs.mkdirSync(nssdb, { recursive: true });
    const certutil = (args: string[]) => {
        const r = childProcess.spawnSync("certutil", ["-d", `sql:${nssdb}`, ...args], { encoding: "utf8" });
        assert.strictEqual(r.status, 0, `certutil ${args.join(" ")}: ${r.stderr}`);
    };
    certutil(["-N", "--empty-password"]);
    if (caPem) {
        fs.writeFileSync(path.join(dir, "ca.crt"), caPem);
        certutil(["-A", "-t", "C,,", "-n", "consul-ca", "-i", path.join(dir, "ca.crt")]);
    }
    return dir;
}

/** Runs the scenario; returns the FIGURE line. */
export async function uiScenario(node: KubeNode, s: UiScenario): Promise<string> {
    const executablePath = chromiumPath();
    const caPem = node.kubectl(["get", "configmap", "consul-ca", "-n", s.namespace, "-o", "jsonpath={.data.ca\\.crt}"]);
    const service = `${UI_SERVICE_NAME}.${s.namespace}.svc`;
    const forward = await portForward(node, s.namespace, `svc/${UI_SERVICE_NAME}`, UI_SERVICE_PORT);
    const url = `https://${service}:${forward.port}/ui/${s.datacenter}/nodes`;
    // The Service's name resolves to the port-forward, so the certificate is checked for that name.
    const launch = (home: string) =>
        chromium.launch({
            executablePath,
            args: [`--host-resolver-rules=MAP ${service} 127.0.0.1`, "--no-sandbox"],
            env: { ...process.env, HOME: home },
        });
    try {
        const untrusted = await launch(browserHome(fs.mkdtempSync(path.join(s.workDir, "home-"))));
        try {
            const page = await untrusted.newPage();
            await assert.rejects(page.goto(url), /net::ERR_CERT_AUTHORITY_INVALID/);
        } finally {
            await untrusted.close();
        }

        const browser = await launch(browserHome(fs.mkdtempSync(path.join(s.workDir, "home-")), caPem));
        try {
            const page = await browser.newPage();
            const started = Date.now();
            const response = await page.goto(url);
            assert.strictEqual(response?.status(), 200);
            fs.mkdirSync(s.outDir, { recursive: true });
            try {
                // With ACLs on and no token the UI lists nothing and offers to log in.
                await page
                    .getByRole("button", { name: /log in/i })
                    .first()
                    .click();
                // As a user does: the token, then Enter (the form's own submit).
                const secret = page.getByLabel(/token|secretid/i).first();
                await secret.fill(s.managementToken);
                await secret.press("Enter");
                // Logged in (the header offers to log out); then the Nodes page afresh, with the token.
                await page
                    .getByRole("button", { name: /log ?out/i })
                    .first()
                    .waitFor();
                await page.goto(url);
                for (const server of s.servers) await page.getByText(server, { exact: true }).first().waitFor();
            } catch (err) {
                // What the browser showed, for whoever reads the failure.
                await page.screenshot({ path: path.join(s.outDir, "consul-ui-failed.png"), fullPage: true });
                const text = await page.locator("body").innerText();
                throw new Error(`${String(err)}\nthe page (${page.url()}) showed:\n${text.slice(0, 3000)}`);
            }
            const loadedMs = Date.now() - started;
            const screenshot = path.join(s.outDir, "consul-ui-nodes.png");
            await page.screenshot({ path: screenshot, fullPage: true });
            return `UI Nodes page with ${s.servers.length} servers after login ${seconds(loadedMs)} (screenshot ${screenshot})`;
        } finally {
            await browser.close();
        }
    } finally {
        forward.child.kill();
    }
}
