import * as pulumi from "@pulumi/pulumi";
import { remote, types } from "@pulumi/command";
import { Bastion, Host } from "../config";
import { ownerId } from "./plan";
import { NodeFile, renderBundle, sha256Hex } from "./bundle";
import { applyScript, ApplyScriptParams, removeScript, wrapForUser } from "./scripts";

/** How to reach the hosts over SSH. */
export interface SshAccess {
    readonly user: string;
    /** A Pulumi secret (made one once for every host: each wrapper costs Outputs per host). */
    readonly privateKey: pulumi.Output<string>;
    readonly bastion?: Bastion;
    /** Pinned host keys by node name ("<type> <base64>"); hosts without one are not verified. */
    readonly hostKeys?: Readonly<Record<string, string>>;
}

/** The provider's connection for one host; the private key stays a secret. */
export function sshConnection(host: Host, ssh: SshAccess): types.input.remote.ConnectionArgs {
    return {
        host: host.address,
        port: host.sshPort,
        user: ssh.user,
        privateKey: ssh.privateKey,
        hostKey: ssh.hostKeys?.[host.name],
        dialErrorLimit: 5,
        perDialTimeout: 15,
        proxy: ssh.bastion
            ? {
                  host: ssh.bastion.host,
                  port: ssh.bastion.port,
                  user: ssh.bastion.user,
                  privateKey: ssh.privateKey,
              }
            : undefined,
    };
}

/**
 * What identifies the machine a node runs on. A change means another machine, so the command is
 * replaced: the old machine leaves and is cleaned (its data dir removed), the new one installed.
 * So it must change only when the machine does. A pinned host key is the machine's own identity:
 * with one, a new address (an IP written as a hostname, say), SSH port, user, key or bastion is
 * an update on the same machine, and only a different key is a move. Without one, the address is
 * all there is; the SSH port, user, key and bastion are still only how the machine is reached.
 */
export function machineTriggers(host: Host, hostKey: string | undefined): string[] {
    return [hostKey !== undefined ? `host-key ${hostKey}` : `address ${host.address}`];
}

export interface ConsulNodeArgs {
    readonly host: Host;
    readonly role: "server" | "client";
    readonly ssh: SshAccess;
    /** Every file the host gets; resolved from secrets, so this Output is secret. */
    readonly files: pulumi.Output<NodeFile[]>;
    /** Everything the apply script needs except the bundle digest. */
    readonly script: Omit<ApplyScriptParams, "bundleSha256" | "nodeName" | "role">;
    /** Rollout ids of the steps this node waits for (the caller passes the same as dependsOn). */
    readonly after?: readonly string[];
    /**
     * The machine is gone (deadHosts): keep the command as it was last deployed, run nothing on it,
     * and when the host leaves the config drop it from the state without running its delete.
     */
    readonly dead?: boolean;
    /**
     * What the command waits for. Given to the command itself too, not only to this component, so
     * the order holds whatever the engine does with a parent's dependencies.
     */
    readonly dependsOn?: pulumi.Resource[];
}

/**
 * One Consul agent on one SSH host: a single remote.Command whose create/update script installs,
 * stages, validates, swaps, restarts (or reloads) and waits, with the files on stdin (secret), and
 * whose delete script leaves the cluster and removes the agent.
 *
 * Config changes are plain updates: the bundle's sha256 is part of the script (which checks it) and
 * the bundle is `stdin`, so a change to either re-runs `create` in place and unchanged inputs run
 * nothing. The only trigger is the machine's identity (`machineTriggers`): the provider *replaces* a
 * Command when a trigger changes, and a node that moved to another machine must be replaced, not
 * updated. An update would only run on the new machine, leaving the old one running an agent with
 * the same node name (so the new agent never becomes that member) and holding the gossip key and
 * tokens (found by the e2e suite, scenario 9). `deleteBeforeReplace` makes the old machine leave
 * and clean up before the new one joins under the same name.
 */
export class ConsulNode extends pulumi.ComponentResource {
    public readonly command: remote.Command;
    /** sha256 of the file bundle: not secret (it reveals nothing about high-entropy contents). */
    public readonly bundleSha256: pulumi.Output<string>;
    /** Names of the nodes this one waited for (for tests and the benchmark; same as dependsOn). */
    public readonly after: readonly string[];

    constructor(name: string, args: ConsulNodeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:vm:ConsulNode", name, {}, opts);
        this.after = args.after ?? [];
        const bundle = pulumi.secret(args.files.apply(renderBundle));
        this.bundleSha256 = pulumi.unsecret(bundle.apply(sha256Hex));
        const script = this.bundleSha256.apply((digest) =>
            wrapForUser(
                applyScript({ ...args.script, nodeName: args.host.name, role: args.role, bundleSha256: digest }),
                args.ssh.user,
            ),
        );
        const remove = wrapForUser(
            removeScript({
                nodeName: args.host.name,
                ownerId: ownerId(args.role, args.host),
                role: args.role,
                httpsPort: args.script.httpsPort,
                installMode: args.script.installMode,
                serverCount: args.script.serverCount,
                waitSeconds: args.script.waitSeconds,
            }),
            args.ssh.user,
        );
        const commandArgs: remote.CommandArgs = {
            connection: sshConnection(args.host, args.ssh),
            triggers: machineTriggers(args.host, args.ssh.hostKeys?.[args.host.name]),
            // No separate `update`: the provider runs `create` again on an update, and the script is
            // written to be re-run (it compares, then swaps only what changed).
            create: script,
            delete: remove,
            stdin: bundle,
            // Our scripts print only progress lines; tools' stderr stays out of the engine log.
            logging: "stdout",
            addPreviousOutputInEnv: false,
        };
        this.command = new remote.Command(`${name}-agent`, commandArgs, {
            parent: this,
            dependsOn: args.dependsOn,
            additionalSecretOutputs: ["stdin"],
            deleteBeforeReplace: true,
            // A dead host: every input keeps its deployed value, so nothing runs on it.
            ...(args.dead ? { ignoreChanges: Object.keys(commandArgs), retainOnDelete: true } : {}),
        });
        this.registerOutputs({ bundleSha256: this.bundleSha256 });
    }
}
