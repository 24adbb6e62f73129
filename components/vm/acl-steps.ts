// A policy-and-token step on the ACL step's server, after the agent's: the snapshot and metrics
// tokens each have one (the DNS token's is a plan step), and so does each token no host keeps (an
// app's, the federation's replication token: stdinTokenCommand). Each is its own command, so a
// re-run with nothing changed opens no SSH session. Also the ACL script itself, which they all run.

import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import type { Host } from "../config";
import { REAL_HOST, ScriptHost } from "./paths";
import { PathParam, pathParams, renderScript, wrapForUser } from "./scripts";

// --- the ACL script: a policy and its token -------------------------------------------------------------------------------

export interface AclScriptParams {
    readonly nodeName: string;
    readonly httpsPort: number;
    readonly policyName: string;
    /** The policy as the ACL API takes it (rendered JSON, no secret). */
    readonly policyJson: string;
    readonly waitSeconds: number;
    /**
     * Which token the policy is for (default agent); its SecretID is in that token's file on the
     * host, or on the command's stdin for the metrics token (no host keeps it).
     */
    readonly token?: "agent" | "snapshot" | "dns" | "metrics";
    /**
     * A token no host file holds (an app's): its SecretID comes on the command's stdin, and it has
     * this fixed AccessorID, so a new SecretID replaces the token. Overrides `token`.
     */
    readonly fromStdin?: { readonly name: string; readonly description: string; readonly accessorId: string };
}

const TOKENS = {
    agent: { file: "AGENT_TOKEN", description: "Consul agents (consul-pulumi)" },
    snapshot: { file: "SNAPSHOT_TOKEN", description: "Consul snapshots (consul-pulumi)" },
    dns: { file: "DNS_TOKEN", description: "Consul DNS, the client agents' default token (consul-pulumi)" },
    metrics: { file: undefined, description: "Prometheus metrics (consul-pulumi)" },
} as const satisfies Record<string, { file: PathParam | undefined; description: string }>;

/** Upserts a policy and creates its token (the SecretID from the token's host file, or stdin) if absent. */
export function aclScript(p: AclScriptParams, host: ScriptHost = REAL_HOST): string {
    const own = p.fromStdin;
    if (own && !/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/.test(own.accessorId)) throw new Error("bad AccessorID");
    const token = p.token ?? "agent";
    const name = own ? own.name : token;
    // Empty: the SecretID comes on stdin.
    const file: PathParam | undefined = own ? undefined : TOKENS[token].file;
    return renderScript("acl", `${name} ACL policy and token, idempotent`, {
        NODE: p.nodeName,
        HTTPS_PORT: p.httpsPort,
        POLICY_NAME: p.policyName,
        POLICY_JSON: p.policyJson,
        TOKEN_NAME: name,
        TOKEN_DESCRIPTION: own ? own.description : TOKENS[token].description,
        WAIT_SECONDS: p.waitSeconds,
        TOKEN_FILE: file === undefined ? "" : pathParams(host, [file])[file],
        ACCESSOR_ID: own ? own.accessorId : "",
        ...pathParams(host, []),
    });
}

/** How the token steps reach the ACL step's server. */
export interface AclStepAccess {
    readonly host: Host;
    readonly connection: remote.CommandArgs["connection"];
    readonly sshUser: string;
    readonly httpsPort: number;
    readonly waitSeconds: number;
}

/**
 * Upserts `policy` and creates the `token` with it. The SecretID is in the token's file on the
 * host, or, given `stdin` (a secret), on the command's stdin and in no host file.
 */
export function tokenAclCommand(
    name: string,
    access: AclStepAccess,
    token: NonNullable<AclScriptParams["token"]>,
    policy: { readonly name: string; readonly json: string },
    opts: pulumi.CustomResourceOptions,
    stdin?: pulumi.Output<string>,
): remote.Command {
    const script = aclScript({
        nodeName: access.host.name,
        httpsPort: access.httpsPort,
        policyName: policy.name,
        policyJson: policy.json,
        waitSeconds: access.waitSeconds,
        token,
    });
    return new remote.Command(
        name,
        {
            connection: access.connection,
            create: wrapForUser(script, access.sshUser),
            ...(stdin ? { stdin } : {}),
            logging: "stdout",
            addPreviousOutputInEnv: false,
        },
        stdin ? { ...opts, additionalSecretOutputs: ["stdin"] } : opts,
    );
}

/** A token no host keeps (an app's, the replication token): its policy, name and fixed AccessorID. */
export interface StdinTokenSpec {
    readonly policyName: string;
    readonly policyJson: string;
    /** Named in the scripts' progress lines. */
    readonly tokenName: string;
    readonly description: string;
    readonly accessorId: string;
}

/** The create script: upserts the policy, creates the token (SecretID on stdin) under its AccessorID. */
export function stdinTokenScript(spec: StdinTokenSpec, access: AclScriptTarget, on: ScriptHost = REAL_HOST): string {
    return aclScript(
        {
            nodeName: access.host.name,
            httpsPort: access.httpsPort,
            policyName: spec.policyName,
            policyJson: spec.policyJson,
            waitSeconds: access.waitSeconds,
            fromStdin: { name: spec.tokenName, description: spec.description, accessorId: spec.accessorId },
        },
        on,
    );
}

/** The delete script: the token (by its AccessorID), then its policy. */
export function stdinTokenRemoveScript(
    spec: StdinTokenSpec,
    access: AclScriptTarget,
    on: ScriptHost = REAL_HOST,
): string {
    return renderScript("acl-remove", `remove the ${spec.tokenName} ACL token and policy`, {
        NODE: access.host.name,
        HTTPS_PORT: access.httpsPort,
        POLICY_NAME: spec.policyName,
        TOKEN_NAME: spec.tokenName,
        ACCESSOR_ID: spec.accessorId,
        WAIT_SECONDS: access.waitSeconds,
        ...pathParams(on, []),
    });
}

/** Where an ACL script runs: the ACL step's server. */
export type AclScriptTarget = Pick<AclStepAccess, "host" | "httpsPort" | "waitSeconds">;

/**
 * A token with its own command: created (SecretID from `token`, on stdin) after the ACL step and
 * removed with its policy when the command is deleted (the token dropped from the config, or the
 * stack destroyed). A new SecretID re-runs it, which replaces the token under the same AccessorID.
 */
export function stdinTokenCommand(
    name: string,
    access: AclStepAccess,
    spec: StdinTokenSpec,
    token: pulumi.Output<string>,
    opts: pulumi.CustomResourceOptions,
): remote.Command {
    return new remote.Command(
        name,
        {
            connection: access.connection,
            create: wrapForUser(stdinTokenScript(spec, access), access.sshUser),
            delete: wrapForUser(stdinTokenRemoveScript(spec, access), access.sshUser),
            stdin: token,
            logging: "stdout",
            addPreviousOutputInEnv: false,
        },
        { ...opts, additionalSecretOutputs: ["stdin"] },
    );
}
