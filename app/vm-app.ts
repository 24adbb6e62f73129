// What a VM app stack needs beyond vmConsulEnvironment: its own ACL token from the Consul stack's
// appTokens output (consul:appTokens there), the environment file that carries both, and the
// script that installs that file root-only on a client host from stdin (the token never goes on
// argv). The pure functions take resolved values so they can be tested without an engine.

import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { APP_NAME } from "../components/config/app-tokens";
import { scriptHeader } from "../components/shell";
import { vmConsulEnvironment } from "./consul-app";

/** Where app environment files live on a host: root-only (0700). */
export const APP_ENV_DIR = "/etc/consul-app";

/** The app's environment file: `<dir>/<app>.env`, mode 0600. */
export function appEnvFile(app: string): string {
    if (!APP_NAME.test(app)) throw new Error(`bad app name ${JSON.stringify(app)}`);
    return `${APP_ENV_DIR}/${app}.env`;
}

const UUID = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/;

/** Pure: the app's token from the Consul stack's appTokens output (a map app → SecretID). */
export function appTokenFrom(appTokens: unknown, app: string): string {
    const tokens = (appTokens ?? {}) as Record<string, unknown>;
    const token = Object.prototype.hasOwnProperty.call(tokens, app) ? tokens[app] : undefined;
    if (typeof token !== "string") {
        const listed = Object.keys(tokens).sort().join(", ") || "none";
        throw new Error(
            `the Consul stack has no token for app "${app}" (its appTokens output lists: ${listed}); add it there with pulumi config set --path 'consul:appTokens[0]' ${app} and pulumi up, or set this stack's app to a listed one`,
        );
    }
    if (!UUID.test(token)) throw new Error(`the Consul stack's token for app "${app}" is not a SecretID (a UUID)`);
    return token;
}

/** Pure: the app's environment: the local agent, the host's CA bundle and the app's token. */
export function withAppToken(env: Readonly<Record<string, string>>, token: string): Record<string, string> {
    return { ...env, CONSUL_HTTP_TOKEN: token };
}

/** The app's environment from the Consul stack (a secret: it holds the token). */
export function vmAppTokenEnvironment(
    consulStack: pulumi.StackReference,
    app: string,
): pulumi.Output<Record<string, string>> {
    // getOutput keeps appTokens secret; pulumi.secret says so here too.
    return pulumi.secret(
        pulumi
            .all([vmConsulEnvironment(consulStack), consulStack.getOutput("appTokens")])
            .apply(([env, tokens]) => withAppToken(env, appTokenFrom(tokens, app))),
    );
}

let body: string | undefined;

/** The install (content on stdin) or remove script for an app's environment file. */
export function envFileScript(action: "install" | "remove", app: string): string {
    body ??= fs.readFileSync(path.join(__dirname, "scripts", "env-file.sh"), "utf8");
    if (body.includes("\r")) throw new Error("app/scripts/env-file.sh has CR characters; it must use LF");
    const header = scriptHeader({ ACTION: action, ENV_DIR: APP_ENV_DIR, ENV_FILE: appEnvFile(app) });
    const lines = body.split("\n").filter((line) => !/^\s*#/.test(line));
    return `#!/bin/sh\n# consul-app: ${action} ${appEnvFile(app)}\n${header}${lines.join("\n")}`;
}
