// Example VM application stack: the Consul stack's client-host environment and this app's ACL
// token, read through a StackReference, written to a root-only environment file on a client host
// (content on stdin, never argv). The app sources it (`set -a; . /etc/consul-app/<app>.env`), or a
// systemd unit names it in EnvironmentFile=, and the consul CLI and curl need nothing else.
// Deploy from this directory: `npm ci` at the repository root, then set the config (README.md).

import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { appEnvFile, envFileScript, renderEnvironmentFile, vmAppTokenEnvironment } from "../../app";
import { expandHome } from "../../components/config";
import { wrapForUser } from "../../components/vm/scripts";
import { readVmAppConfig } from "./config";

const project = pulumi.getProject();
const raw: Record<string, string> = {};
for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(`${project}:`)) raw[key.slice(project.length + 1)] = value;
}
const settings = readVmAppConfig(raw, project, pulumi.getStack());
const keyPath = expandHome(settings.sshPrivateKeyPath);
if (!fs.existsSync(keyPath)) {
    throw new pulumi.RunError(
        `${project}:sshPrivateKeyPath = ${JSON.stringify(settings.sshPrivateKeyPath)}: no such file; give the SSH private key's path.`,
    );
}

const consulStack = new pulumi.StackReference(settings.consulStack);
const env = vmAppTokenEnvironment(consulStack, settings.app);

const envFile = new remote.Command(
    "consul-app-env",
    {
        connection: {
            host: settings.host,
            port: settings.sshPort,
            user: settings.sshUser,
            privateKey: pulumi.secret(fs.readFileSync(keyPath, "utf8")),
            hostKey: settings.sshHostKey,
            dialErrorLimit: 5,
            perDialTimeout: 15,
        },
        create: wrapForUser(envFileScript("install", settings.app), settings.sshUser),
        delete: wrapForUser(envFileScript("remove", settings.app), settings.sshUser),
        // A changed environment (a new token, address or CA path) changes stdin: an update.
        stdin: pulumi.secret(env.apply(renderEnvironmentFile)),
        logging: "stdout",
        addPreviousOutputInEnv: false,
    },
    { additionalSecretOutputs: ["stdin"] },
);

export const envFilePath = appEnvFile(settings.app);
export const consulHttpAddr = pulumi.unsecret(env.apply((e) => e.CONSUL_HTTP_ADDR));
export const installedBy = envFile.stdout;
