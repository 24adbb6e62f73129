// The CA and certificates as minted from the program's inputs, checked with openssl and Node's
// X509Certificate the way Consul will use them.

import * as assert from "assert";
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EvaluatedStack, evaluateProgram, stackFileConfig, withOperatorHome } from "../mocks";

const HOURS = 3600 * 1000;

function openssl(args: string[]): string {
    return execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs `openssl verify` and returns whether it accepted the chain (and the purpose/name/IP). */
function verifies(dir: string, caPem: string, certPem: string, extra: string[]): boolean {
    const ca = path.join(dir, "ca.pem");
    const cert = path.join(dir, `cert-${crypto.randomUUID()}.pem`);
    fs.writeFileSync(ca, caPem);
    fs.writeFileSync(cert, certPem);
    try {
        return openssl(["verify", "-CAfile", ca, ...extra, cert])
            .trim()
            .endsWith(": OK");
    } catch {
        return false;
    }
}

function pemOf(result: EvaluatedStack, name: string): string {
    return result.mocks.byName(name).state.certPem as string;
}

describe("ConsulPki", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-pki-"));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    describe("on the VM topology (Pulumi.prod.yaml)", () => {
        let result: EvaluatedStack;
        let operator: ReturnType<typeof withOperatorHome>;
        before(async () => {
            operator = withOperatorHome();
            const { config } = stackFileConfig("prod");
            result = await evaluateProgram(config, { stack: "prod" });
        });
        after(() => operator.restore());

        it("makes an ECDSA P-256 CA that may sign certificates and CRLs, valid 5 years by default", () => {
            const caKey = result.mocks.byName("consul-pki-ca-key");
            assert.strictEqual(caKey.inputs.algorithm, "ECDSA");
            assert.strictEqual(caKey.inputs.ecdsaCurve, "P256");
            const ca = new crypto.X509Certificate(pemOf(result, "consul-pki-ca"));
            assert.strictEqual(ca.ca, true);
            assert.strictEqual(ca.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
            const caFile = path.join(dir, "ca-text.pem");
            fs.writeFileSync(caFile, pemOf(result, "consul-pki-ca"));
            const text = openssl(["x509", "-noout", "-ext", "keyUsage,basicConstraints", "-in", caFile]);
            assert.match(text, /critical\s+Digital Signature, Certificate Sign, CRL Sign/);
            assert.match(text, /CA:TRUE/);
            const lifetime = Date.parse(ca.validTo) - Date.parse(ca.validFrom);
            assert.strictEqual(lifetime, 43800 * HOURS);
            assert.strictEqual(result.outputs.caCertPem, pemOf(result, "consul-pki-ca"));
        });

        it("gives each server a certificate that verifies for server.dc1.consul, its address, localhost and 127.0.0.1", () => {
            const caPem = result.outputs.caCertPem as string;
            for (const [host, ip] of [
                ["consul-server-1", "10.20.0.11"],
                ["consul-server-2", "10.20.0.12"],
                ["consul-server-3", "10.20.0.13"],
            ]) {
                const pem = pemOf(result, `consul-pki-${host}`);
                assert.ok(
                    verifies(dir, caPem, pem, ["-purpose", "sslserver", "-verify_hostname", "server.dc1.consul"]),
                    host,
                );
                assert.ok(
                    verifies(dir, caPem, pem, ["-purpose", "sslclient", "-verify_hostname", "server.dc1.consul"]),
                    host,
                );
                assert.ok(verifies(dir, caPem, pem, ["-purpose", "sslserver", "-verify_ip", "127.0.0.1"]), host);
                assert.ok(verifies(dir, caPem, pem, ["-verify_ip", ip]), `${host} for ${ip}`);
                assert.ok(verifies(dir, caPem, pem, ["-verify_hostname", "localhost"]), host);
                // Negative controls: the check can fail.
                assert.ok(!verifies(dir, caPem, pem, ["-verify_hostname", "server.dc2.consul"]), host);
                assert.ok(!verifies(dir, caPem, pem, ["-verify_ip", "10.20.0.99"]), host);
                const cert = new crypto.X509Certificate(pem);
                assert.strictEqual(cert.subject, "CN=server.dc1.consul");
                assert.ok(cert.subjectAltName?.includes("IP Address:0:0:0:0:0:0:0:1"), cert.subjectAltName);
                assert.strictEqual(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 8760 * HOURS);
            }
        });

        it("rejects a server certificate signed by another CA", () => {
            const otherCa = path.join(dir, "other-ca.pem");
            const otherKey = path.join(dir, "other-ca.key");
            openssl([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                otherKey,
                "-out",
                otherCa,
                "-subj",
                "/CN=other",
                "-days",
                "2",
            ]);
            const pem = pemOf(result, "consul-pki-consul-server-1");
            assert.ok(!verifies(dir, fs.readFileSync(otherCa, "utf8"), pem, []));
        });

        it("issues server certificates for serverAuth and clientAuth, with early renewal", () => {
            for (const host of ["consul-server-1", "consul-server-2", "consul-server-3"]) {
                const signer = result.mocks.byName(`consul-pki-${host}`);
                assert.deepStrictEqual(signer.inputs.allowedUses, [
                    "digital_signature",
                    "key_encipherment",
                    "server_auth",
                    "client_auth",
                ]);
                assert.strictEqual(signer.inputs.earlyRenewalHours, 720);
                assert.strictEqual(signer.inputs.validityPeriodHours, 8760);
                const key = result.mocks.byName(`consul-pki-${host}-key`);
                assert.strictEqual(key.inputs.ecdsaCurve, "P256");
            }
        });

        it("issues a CLI certificate that is a client certificate only", () => {
            const caPem = result.outputs.caCertPem as string;
            const pem = result.outputs.cliCertPem as string;
            assert.strictEqual(pem, pemOf(result, "consul-pki-cli"));
            assert.ok(verifies(dir, caPem, pem, ["-purpose", "sslclient"]));
            assert.ok(!verifies(dir, caPem, pem, ["-purpose", "sslserver"]));
            assert.strictEqual(new crypto.X509Certificate(pem).subject, "CN=cli.dc1.consul");
            const key = crypto.createPrivateKey(result.outputs.cliKeyPem as string);
            assert.ok(new crypto.X509Certificate(pem).checkPrivateKey(key));
        });
    });

    describe("on the Kubernetes topology (Pulumi.dev.yaml)", () => {
        let result: EvaluatedStack;
        before(async () => {
            const { config } = stackFileConfig("dev");
            result = await evaluateProgram(config, { stack: "dev" });
        });

        it("issues one server certificate valid for every in-cluster DNS form of the servers", () => {
            const caPem = result.outputs.caCertPem as string;
            const pem = pemOf(result, "consul-pki-server");
            for (const name of [
                "server.dc1.consul",
                "consul-server",
                "consul-server.consul",
                "consul-server.consul.svc",
                "consul-server-0.consul-server.consul.svc.cluster.local",
                "consul-server-2.consul-server.consul.svc",
                "consul-ui.consul.svc",
                "localhost",
            ]) {
                assert.ok(verifies(dir, caPem, pem, ["-purpose", "sslserver", "-verify_hostname", name]), name);
            }
            assert.ok(verifies(dir, caPem, pem, ["-verify_ip", "127.0.0.1"]));
            assert.ok(!verifies(dir, caPem, pem, ["-verify_hostname", "consul-server.other-ns.svc"]));
        });
    });
});
