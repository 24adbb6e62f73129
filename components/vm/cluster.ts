import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import {
    AclTokens,
    AGENT_POLICY_NAME,
    agentPolicyBody,
    ConsulPki,
    DNS_POLICY_NAME,
    dnsPolicyBody,
    DnsToken,
    GossipKeySource,
    METRICS_POLICY_NAME,
    metricsPolicyBody,
    MetricsToken,
    SNAPSHOT_POLICY_NAME,
    snapshotPolicyBody,
    ReleaseKey,
    releaseKey,
    TEST_RELEASE_KEY_ENV,
} from "../security";
import type { AgentSettings } from "../agent";
import { Host, Settings, VmSettings } from "../config";
import { CliEnvironment, hostCliEnvironment } from "./cli-environment";
import { nodeFiles, serverApiUrls } from "./host-files";
import { ConsulNode, sshConnection, SshAccess } from "./node";
import { ownerId, planRollout, RolloutStep } from "./plan";
import { sha256Hex } from "./bundle";
import { keyringScript } from "./keyring";
import { pruneScript, wrapForUser } from "./scripts";
import { aclScript } from "./acl-steps";
import { VmSnapshots, vmSnapshots } from "./snapshot";
import { AclStepAccess, tokenAclCommand } from "./acl-steps";
import { dnsForwarderFiles } from "./dns";
import { vmAppTokens } from "./app-tokens";
import { HostMaterial, hostMaterial } from "./material";
import type { PrimaryMaterial } from "../federation/material";

/** How long each host's wait (agent back, leader, autopilot healthy) may take. */
export const WAIT_SECONDS = 300;

/** The slice of Settings the VM hosts read. */
export type VmClusterSettings = AgentSettings &
    Pick<Settings, "consulVersion" | "appTokens"> & { readonly vm: VmSettings };

export interface VmClusterArgs {
    readonly settings: VmClusterSettings;
    readonly pki: ConsulPki;
    readonly gossipKey: GossipKeySource;
    readonly aclTokens?: AclTokens;
    /** vm topology: the metrics token and its ACL step (with telemetry and ACLs on). */
    readonly metrics?: boolean;
    /** A federation secondary: what it takes from the primary (it never bootstraps ACLs). */
    readonly primary?: pulumi.Output<PrimaryMaterial>;
}

/** The CLI environment for operators, on the hosts and from their own machine. */
export interface VmCliEnvironment {
    readonly onServers: CliEnvironment;
    readonly onClients: CliEnvironment;
    /** Save the caCertPem, cliCertPem and cliKeyPem outputs under these file names. */
    readonly fromWorkstation: CliEnvironment;
}

/** Consul servers and clients on SSH hosts, rolled out in the order `planRollout` gives. */
export class VmCluster extends pulumi.ComponentResource {
    public readonly plan: readonly RolloutStep[];
    public readonly nodes: Record<string, ConsulNode> = {};
    public readonly acl?: remote.Command;
    /** Where the token steps after `acl` run (ACLs on). */
    public readonly aclAccess?: AclStepAccess;
    /** Snapshots on, with ACLs: the snapshot policy and token, after the agent's. */
    public readonly snapshotAcl?: remote.Command;
    /** dnsDefaultToken on: the DNS policy and token, after the agent's and before any client. */
    public readonly dnsAcl?: remote.Command;
    /** consul:appTokens: each app's token SecretID (secret) and the commands that create them. */
    public readonly appTokens: Readonly<Record<string, pulumi.Output<string>>> = {};
    public readonly appTokenCommands: readonly remote.Command[] = [];
    /** Telemetry on, with ACLs: the token Prometheus scrapes with, and the step that creates it. */
    public readonly metricsToken?: MetricsToken;
    public readonly metricsAcl?: remote.Command;
    public readonly cliEnvironment: VmCliEnvironment;
    /** What a downloaded release's SHA256SUMS must be signed with. */
    private readonly releaseKey: ReleaseKey;
    /** Snapshots on (snapshotInterval): what every server's files add. */
    private readonly snapshots?: VmSnapshots;
    /** False in a federation secondary, whose ACLs come from the primary by replication. */
    private readonly bootstrapsAcl: boolean;

    constructor(name: string, args: VmClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:vm:VmCluster", name, {}, opts);
        const { settings } = args;
        const { vm } = settings;
        this.releaseKey = releaseKey();
        this.bootstrapsAcl = !args.primary;
        if (this.releaseKey.testKeyFile) {
            void pulumi.log.warn(
                `${TEST_RELEASE_KEY_ENV} is set: Consul releases must be signed by the key in ${this.releaseKey.testKeyFile} (${this.releaseKey.fingerprint}), not HashiCorp's; only the test suites set it.`,
                this,
            );
        }
        const ssh: SshAccess = {
            user: vm.sshUser,
            privateKey: pulumi.secret(vm.sshPrivateKey),
            bastion: vm.bastion,
            hostKeys: vm.hostKeys,
        };
        // Dead hosts are out of every live host's config; their own commands are kept as they were.
        const dead = new Set(vm.deadHosts);
        const servers = vm.servers.filter((h) => !dead.has(h.name));
        const clients = vm.clients.filter((h) => !dead.has(h.name));
        // The agents' bootstrap_expect and min_quorum keep the declared count, dead servers
        // included: Consul reads both only when the cluster first bootstraps, and a count that
        // stays odd keeps the policy pack's consul-odd-server-count true while a dead server waits
        // for its replacement (the lost-server runbook). The scripts' health waits count live ones.
        const live: VmClusterSettings = settings;
        this.plan = planRollout(servers, clients, vm.clientBatchSize, settings.acl.enabled, dead.size > 0);
        const urls = serverApiUrls(settings, servers);
        // The config allows dnsDefaultToken only with ACLs on.
        const dnsToken = vm.dns?.defaultToken ? new DnsToken(`${name}-dns-token`, { parent: this }) : undefined;
        const material = hostMaterial(args, dnsToken);
        if (vm.snapshot) {
            const { datacenter, ports, acl } = settings;
            const common = { datacenter, httpsPort: ports.https, waitSeconds: WAIT_SECONDS, aclEnabled: acl.enabled };
            this.snapshots = vmSnapshots(name, { ...common, snapshot: vm.snapshot }, this);
        }
        const done: Record<string, pulumi.Resource> = {};
        // A federation secondary contacts no host before the primary's output passed its checks (the
        // agents' files wait on it anyway; the prune step would not).
        const checked = args.primary ? pulumi.unsecret(args.primary.apply(() => true)) : pulumi.output(true);
        // One command on one server for the whole cluster (prune, keyring, ACL).
        const clusterStep = (
            step: RolloutStep,
            create: pulumi.Input<string>,
            dependsOn: pulumi.Resource[],
            stdin?: pulumi.Output<string>,
        ) =>
            new remote.Command(
                `${name}-${step.id}`,
                {
                    connection: sshConnection(step.host, ssh),
                    create: pulumi.all([create, checked]).apply(([script]) => wrapForUser(script, ssh.user)),
                    stdin,
                    logging: "stdout",
                    addPreviousOutputInEnv: false,
                },
                { parent: this, dependsOn, ...(stdin ? { additionalSecretOutputs: ["stdin"] } : {}) },
            );
        // The keyring steps' stdin is the key alone; its digest (no secret) changes their script.
        const keyDigest = pulumi.unsecret(args.gossipKey.key.apply(sha256Hex));

        for (const step of this.plan) {
            const dependsOn = step.after.map((id) => done[id]);
            const cluster = { nodeName: step.host.name, httpsPort: settings.ports.https, waitSeconds: WAIT_SECONDS };
            switch (step.kind) {
                case "prune":
                    done[step.id] = clusterStep(step, pruneScript({ ...cluster, deadNodes: [...dead] }), dependsOn);
                    continue;
                case "acl":
                    this.acl = clusterStep(
                        step,
                        aclScript({ ...cluster, policyName: AGENT_POLICY_NAME, policyJson: agentPolicyBody() }),
                        dependsOn,
                    );
                    done[step.id] = this.acl;
                    if (dnsToken) {
                        // Its own command: a re-run with nothing changed opens no SSH session.
                        const body = { ...cluster, policyName: DNS_POLICY_NAME, policyJson: dnsPolicyBody() };
                        this.dnsAcl = clusterStep({ ...step, id: "dns-acl" }, aclScript({ ...body, token: "dns" }), [
                            this.acl,
                        ]);
                        done[step.id] = this.dnsAcl;
                    }
                    continue;
                case "keyring-install":
                case "keyring-finish": {
                    const phase = step.kind === "keyring-install" ? "install" : "finish";
                    const script = keyDigest.apply((keySha256) =>
                        keyringScript({ ...cluster, phase, serverApiUrls: urls, keySha256 }),
                    );
                    done[step.id] = clusterStep(step, script, dependsOn, args.gossipKey.key);
                    continue;
                }
            }
            const node = this.node(name, live, servers, urls, ssh, step, material, dependsOn);
            this.nodes[step.id] = node;
            done[step.id] = node;
        }
        const aclStep = this.plan.find((s) => s.kind === "acl");
        const access = (this.aclAccess = aclStep && {
            host: aclStep.host,
            connection: sshConnection(aclStep.host, ssh),
            sshUser: ssh.user,
            httpsPort: settings.ports.https,
            waitSeconds: WAIT_SECONDS,
        });
        if (this.snapshots?.token && this.acl && access) {
            this.snapshotAcl = tokenAclCommand(
                `${name}-snapshot-acl`,
                access,
                "snapshot",
                { name: SNAPSHOT_POLICY_NAME, json: snapshotPolicyBody() },
                { parent: this, dependsOn: [this.acl] },
            );
        }
        if (settings.appTokens && this.acl && access) {
            const apps = vmAppTokens(name, { ...access, apps: settings.appTokens, acl: this.acl }, this);
            [this.appTokens, this.appTokenCommands] = [apps.tokens, apps.commands];
        }
        if (args.metrics && settings.telemetry.enabled && this.acl && access) {
            this.metricsToken = new MetricsToken(`${name}-metrics-token`, { parent: this });
            this.metricsAcl = tokenAclCommand(
                `${name}-metrics-acl`,
                access,
                "metrics",
                { name: METRICS_POLICY_NAME, json: metricsPolicyBody() },
                { parent: this, dependsOn: [this.acl] },
                this.metricsToken.token,
            );
        }
        // A dead host's command is registered as it was, so the engine runs nothing on it.
        for (const host of [...vm.servers, ...vm.clients].filter((h) => dead.has(h.name))) {
            const role = vm.servers.includes(host) ? "server" : "client";
            const step: RolloutStep = { id: ownerId(role, host), kind: role, host, after: [] };
            this.nodes[step.id] = this.node(name, live, servers, urls, ssh, step, material, [], true);
        }

        this.cliEnvironment = {
            onServers: hostCliEnvironment(settings, "server"),
            onClients: hostCliEnvironment(settings, "client"),
            fromWorkstation: {
                CONSUL_HTTP_ADDR: urls[0],
                CONSUL_CACERT: "consul-agent-ca.pem",
                CONSUL_CLIENT_CERT: "consul-cli.pem",
                CONSUL_CLIENT_KEY: "consul-cli-key.pem",
            },
        };
        this.registerOutputs({});
    }

    /** One host's agent (a dead one's is kept as last deployed). */
    private node(
        name: string,
        live: VmClusterSettings,
        servers: readonly Host[],
        urls: readonly string[],
        ssh: SshAccess,
        step: RolloutStep,
        material: HostMaterial,
        dependsOn: pulumi.Resource[],
        dead = false,
    ): ConsulNode {
        const { vm } = live;
        const role = step.kind === "server" ? "server" : "client";
        let files = material(role, step.host).apply((m) =>
            nodeFiles(live, role, step.host, servers, m, { selfRegister: vm.clientSelfRegister }),
        );
        if (role === "server" && this.snapshots) files = this.snapshots.withFiles(files, step.host);
        const dns = vm.dns;
        if (dns) files = files.apply((own) => [...own, ...dnsForwarderFiles(dns, live, role)]);
        return new ConsulNode(
            `${name}-${step.id}`,
            {
                host: step.host,
                role,
                ssh,
                files,
                after: step.after,
                dead,
                dependsOn,
                script: {
                    consulVersion: live.consulVersion,
                    installMode: vm.installMode,
                    releaseMirrorUrl: vm.releaseMirrorUrl,
                    releaseKey: this.releaseKey,
                    httpsPort: live.ports.https,
                    serverCount: servers.length,
                    isLastServer: step.isLastServer ?? false,
                    serverApiUrls: role === "client" ? urls : [],
                    updatedServers:
                        role === "server" ? servers.slice(0, servers.indexOf(step.host)).map((s) => s.address) : [],
                    waitSeconds: WAIT_SECONDS,
                    aclBootstrap: this.bootstrapsAcl,
                },
            },
            { parent: this, dependsOn },
        );
    }
}
