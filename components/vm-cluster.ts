import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { AclTokens } from "./acl-tokens";
import { Settings, VmSettings } from "./config";
import { ConsulNode, sshConnection, SshAccess } from "./consul-node";
import { GossipKey } from "./gossip";
import { aclScript, wrapForUser } from "./node-scripts";
import { ConsulPki } from "./pki";
import {
    AGENT_POLICY_NAME,
    agentPolicyJson,
    CliEnvironment,
    hostCliEnvironment,
    NodeMaterial,
    nodeFiles,
    planRollout,
    RolloutStep,
    serverApiUrls,
} from "./vm-plan";

/** How long each host's wait (agent back, leader, autopilot healthy) may take. */
export const WAIT_SECONDS = 300;

export interface VmClusterArgs {
    readonly settings: Settings;
    readonly pki: ConsulPki;
    readonly gossipKey: GossipKey;
    readonly aclTokens?: AclTokens;
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
    public readonly cliEnvironment: VmCliEnvironment;

    constructor(name: string, args: VmClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:vm:VmCluster", name, {}, opts);
        const { settings, pki } = args;
        const vm = settings.vm as VmSettings;
        const ssh: SshAccess = {
            user: vm.sshUser,
            privateKey: vm.sshPrivateKey,
            bastion: vm.bastion,
            hostKeys: vm.hostKeys,
        };
        this.plan = planRollout(vm.servers, vm.clients, vm.clientBatchSize, settings.acl.enabled);
        const urls = serverApiUrls(settings, vm.servers);
        const done: Record<string, pulumi.Resource> = {};

        for (const step of this.plan) {
            const dependsOn = step.after.map((id) => done[id]);
            if (step.kind === "acl") {
                this.acl = new remote.Command(
                    `${name}-acl`,
                    {
                        connection: sshConnection(step.host, ssh),
                        create: wrapForUser(
                            aclScript({
                                nodeName: step.host.name,
                                httpsPort: settings.ports.https,
                                policyName: AGENT_POLICY_NAME,
                                policyJson: agentPolicyJson(),
                                waitSeconds: WAIT_SECONDS,
                            }),
                            ssh.user,
                        ),
                        logging: "stdout",
                        addPreviousOutputInEnv: false,
                    },
                    { parent: this, dependsOn },
                );
                done[step.id] = this.acl;
                continue;
            }
            const role = step.kind;
            const files = pulumi
                .all([
                    pki.caCertPem,
                    args.gossipKey.key,
                    role === "server" ? pki.serverCerts[step.host.name].certPem : "",
                    role === "server" ? pki.serverCerts[step.host.name].privateKeyPem : "",
                    role === "server" ? pki.cliCert.certPem : "",
                    role === "server" ? pki.cliCert.privateKeyPem : "",
                    args.aclTokens && role === "server" ? args.aclTokens.managementToken : "",
                    args.aclTokens ? args.aclTokens.agentToken : "",
                ])
                .apply(([ca, gossip, cert, key, cliCert, cliKey, management, agent]) => {
                    const material: NodeMaterial = {
                        caCertPem: ca,
                        gossipKey: gossip,
                        serverCertPem: cert || undefined,
                        serverKeyPem: key || undefined,
                        cliCertPem: cliCert || undefined,
                        cliKeyPem: cliKey || undefined,
                        managementToken: management || undefined,
                        agentToken: agent || undefined,
                    };
                    return nodeFiles(settings, role, step.host, vm.servers, material);
                });
            const node = new ConsulNode(
                `${name}-${step.id}`,
                {
                    host: step.host,
                    role,
                    ssh,
                    files: pulumi.secret(files),
                    after: step.after,
                    dependsOn,
                    script: {
                        consulVersion: settings.consulVersion,
                        installMode: vm.installMode,
                        releaseMirrorUrl: vm.releaseMirrorUrl,
                        httpsPort: settings.ports.https,
                        serverCount: vm.servers.length,
                        isLastServer: step.isLastServer ?? false,
                        serverApiUrls: role === "client" ? urls : [],
                        updatedServers:
                            role === "server"
                                ? vm.servers.slice(0, vm.servers.indexOf(step.host)).map((s) => s.address)
                                : [],
                        waitSeconds: WAIT_SECONDS,
                    },
                },
                { parent: this, dependsOn },
            );
            this.nodes[step.id] = node;
            done[step.id] = node;
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
}
