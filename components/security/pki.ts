import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { CaSettings } from "../config";

/** One host's certificate to issue: its resource name and the names and IPs it must be valid for. */
export interface HostIdentity {
    readonly name: string;
    readonly dnsNames: readonly string[];
    readonly ipAddresses: readonly string[];
}

export interface ConsulPkiArgs {
    readonly datacenter: string;
    readonly domain: string;
    readonly caValidityHours: number;
    readonly certValidityHours: number;
    readonly earlyRenewalHours: number;
    /** Which CA signs, and (during a rotation) which other one is still trusted. */
    readonly ca: CaSettings;
    /** Each gets its own key and certificate; the common server names are added to all. */
    readonly servers: readonly HostIdentity[];
    /**
     * Optional certificate for the client agents' HTTPS listener (CN client.<dc>.<domain>, server
     * auth only), so apps can verify their node-local agent with our CA instead of the Connect CA.
     */
    readonly clientHttps?: {
        readonly dnsNames: readonly string[];
        readonly ipAddresses: readonly string[];
        /**
         * One certificate per host instead, with the host's own names added (as auto_encrypt puts a
         * primary's VM client's address in its certificate): for VM clients of a secondary.
         */
        readonly hosts?: readonly HostIdentity[];
    };
    /** A federation primary: one intermediate CA per secondary datacenter, signed by this CA. */
    readonly intermediates?: readonly string[];
    /**
     * A federation secondary: no CA of its own. Its certificates are signed by the intermediate CA
     * the primary issued for it and carry it in their chain; agents trust the primary's root.
     */
    readonly signer?: IntermediateCa & { readonly rootCertPem: pulumi.Input<string> };
}

/** An intermediate CA (a federation secondary's signer). */
export interface IntermediateCa {
    readonly certPem: pulumi.Input<string>;
    /** A secret. */
    readonly privateKeyPem: pulumi.Input<string>;
}

export interface IssuedCert {
    readonly certPem: pulumi.Output<string>;
    /** A secret. */
    readonly privateKeyPem: pulumi.Output<string>;
}

// The private key fields the tls provider returns; marked secret here too so that a provider (or
// a mock) that forgets cannot leak them into plain state or outputs.
const KEY_SECRETS = ["privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"];

/** The names every Consul server certificate carries, whatever the topology. */
export function commonServerNames(datacenter: string, domain: string): { dnsNames: string[]; ipAddresses: string[] } {
    return {
        dnsNames: [`server.${datacenter}.${domain}`, "localhost"],
        ipAddresses: ["127.0.0.1", "::1"],
    };
}

/** Sorted, de-duplicated: the same identities always give the same CSR inputs. */
function unique(values: readonly string[]): string[] {
    return [...new Set(values)].sort();
}

const CA_USES = ["cert_signing", "crl_signing", "digital_signature"];

function withNewline(pem: string): string {
    return pem.endsWith("\n") ? pem : pem + "\n";
}

/** The CA keeper whose resources keep the names they had before CAs had keepers. */
export const INITIAL_CA_KEEPER = "initial";

/**
 * The cluster CA and the certificates signed by it, as `consul tls ca create` / `consul tls cert
 * create` would make them: ECDSA P-256 keys, server certificates for `server.<dc>.<domain>`.
 * The CA private key is only an input of the signing resources, so it never leaves the state.
 *
 * During a CA rotation there are two CAs, each named by its keeper: both are trusted, and the
 * phase says which one signs (the previous one in `trust`, the new one in `reissue`).
 */
export class ConsulPki extends pulumi.ComponentResource {
    /** Every CA certificate agents and apps must trust (two during a rotation), as one PEM bundle. */
    public readonly caCertPem: pulumi.Output<string>;
    public readonly serverCerts: Record<string, IssuedCert>;
    /** The operator CLI certificate (clientAuth only). */
    public readonly cliCert: IssuedCert;
    /** Set when `clientHttps` was asked for without hosts. */
    public readonly clientHttpsCert?: IssuedCert;
    /** By host name, when `clientHttps` names hosts. */
    public readonly clientHttpsCerts: Record<string, IssuedCert> = {};
    /** A federation primary's intermediate CAs, by secondary datacenter. */
    public readonly intermediates: Record<string, IssuedCert> = {};

    constructor(name: string, args: ConsulPkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:ConsulPki", name, {}, opts);
        const parent = { parent: this };
        const newKey = (keyName: string) =>
            new tls.PrivateKey(
                keyName,
                { algorithm: "ECDSA", ecdsaCurve: "P256" },
                { ...parent, additionalSecretOutputs: KEY_SECRETS },
            );

        const authority = (keeper: string) => {
            const stem = keeper === INITIAL_CA_KEEPER ? `${name}-ca` : `${name}-ca-${keeper}`;
            const key = newKey(`${stem}-key`);
            const cert = new tls.SelfSignedCert(
                stem,
                {
                    privateKeyPem: key.privateKeyPem,
                    isCaCertificate: true,
                    setSubjectKeyId: true,
                    validityPeriodHours: args.caValidityHours,
                    allowedUses: CA_USES,
                    subject: {
                        commonName:
                            `Consul Agent CA ${args.datacenter}.${args.domain}` +
                            (keeper === INITIAL_CA_KEEPER ? "" : ` (${keeper})`),
                        organization: "Consul",
                    },
                },
                parent,
            );
            return { privateKeyPem: key.privateKeyPem, certPem: cert.certPem };
        };
        let signer: { privateKeyPem: pulumi.Input<string>; certPem: pulumi.Input<string> };
        // What a certificate file holds after the leaf: the intermediate, for a secondary.
        let chain: pulumi.Input<string> | undefined;
        if (args.signer) {
            signer = args.signer;
            chain = args.signer.certPem;
            this.caCertPem = pulumi.output(args.signer.rootCertPem);
        } else {
            const current = authority(args.ca.keeper);
            const previous = args.ca.previous ? authority(args.ca.previous.keeper) : undefined;
            signer = previous && args.ca.previous?.phase === "trust" ? previous : current;
            // The signing CA first; the other one after it while both are trusted.
            this.caCertPem = previous
                ? pulumi
                      .all([signer.certPem, (signer === current ? previous : current).certPem])
                      .apply(([first, second]) => withNewline(first) + second)
                : pulumi.output(signer.certPem);
        }

        const issue = (
            certName: string,
            commonName: string,
            dnsNames: string[],
            ipAddresses: string[],
            allowedUses: string[],
            isCa = false,
        ): IssuedCert => {
            const key = newKey(`${certName}-key`);
            const request = new tls.CertRequest(
                `${certName}-csr`,
                {
                    privateKeyPem: key.privateKeyPem,
                    subject: { commonName },
                    dnsNames,
                    ipAddresses,
                },
                parent,
            );
            const cert = new tls.LocallySignedCert(
                certName,
                {
                    certRequestPem: request.certRequestPem,
                    caPrivateKeyPem: signer.privateKeyPem,
                    caCertPem: signer.certPem,
                    validityPeriodHours: isCa ? args.caValidityHours : args.certValidityHours,
                    earlyRenewalHours: args.earlyRenewalHours,
                    allowedUses,
                    ...(isCa ? { isCaCertificate: true, setSubjectKeyId: true } : {}),
                },
                parent,
            );
            // A secondary's peers build the chain to the primary's root from what the file holds.
            const certPem = chain
                ? pulumi.all([cert.certPem, chain]).apply(([leaf, rest]) => withNewline(leaf) + rest)
                : cert.certPem;
            return { certPem, privateKeyPem: pulumi.secret(key.privateKeyPem) };
        };

        const common = commonServerNames(args.datacenter, args.domain);
        const serverTlsName = common.dnsNames[0];
        this.serverCerts = {};
        for (const server of args.servers) {
            this.serverCerts[server.name] = issue(
                `${name}-${server.name}`,
                serverTlsName,
                unique([...common.dnsNames, ...server.dnsNames]),
                unique([...common.ipAddresses, ...server.ipAddresses]),
                ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
            );
        }
        this.cliCert = issue(
            `${name}-cli`,
            `cli.${args.datacenter}.${args.domain}`,
            [],
            [],
            ["digital_signature", "key_encipherment", "client_auth"],
        );

        const clientHttps = (certName: string, dnsNames: readonly string[], ipAddresses: readonly string[]) =>
            issue(certName, `client.${args.datacenter}.${args.domain}`, unique(dnsNames), unique(ipAddresses), [
                "digital_signature",
                "key_encipherment",
                "server_auth",
            ]);
        const names = args.clientHttps;
        if (names?.hosts) {
            for (const host of names.hosts) {
                this.clientHttpsCerts[host.name] = clientHttps(
                    `${name}-client-https-${host.name}`,
                    [...names.dnsNames, ...host.dnsNames],
                    [...names.ipAddresses, ...host.ipAddresses],
                );
            }
        } else if (names) {
            this.clientHttpsCert = clientHttps(`${name}-client-https`, names.dnsNames, names.ipAddresses);
        }

        for (const dc of args.intermediates ?? []) {
            this.intermediates[dc] = issue(
                `${name}-intermediate-${dc}`,
                `Consul Agent CA ${dc}.${args.domain} (intermediate of ${args.datacenter})`,
                [],
                [],
                CA_USES,
                true,
            );
        }

        this.registerOutputs({ caCertPem: this.caCertPem });
    }
}
