// Example application stack: a Deployment whose container (start.sh) registers itself with its
// node-local agent and uses its KV store over HTTPS, verifying the agent's certificate with the
// cluster CA.
// Deploy from this directory: `npm ci` at the repository root, then
// `pulumi config set consulStack acme/consul/dev && pulumi up`.

import * as fs from "fs";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { kubernetesConsulAccess } from "../../app";
import { DEFAULT_CONSUL_VERSION } from "../../components/config/schema";

const config = new pulumi.Config();
const consulStack = new pulumi.StackReference(config.require("consulStack"));
const namespace = config.get("namespace") ?? "apps";
const tokenSecret = config.get("tokenSecret") ?? "";
const image = config.get("image") || `hashicorp/consul:${DEFAULT_CONSUL_VERSION}`;

const consul = kubernetesConsulAccess(consulStack);
const startScript = fs.readFileSync(path.join(__dirname, "start.sh"), "utf8");
const podName: k8s.types.input.core.v1.EnvVar = {
    name: "POD_NAME",
    valueFrom: { fieldRef: { fieldPath: "metadata.name" } },
};
const appLabels = { "app.kubernetes.io/name": "consul-example-app" };

// With ACL default deny the app needs a token; it comes from a Secret, never a literal env value.
const tokenEnv: k8s.types.input.core.v1.EnvVar[] = tokenSecret
    ? [{ name: "CONSUL_HTTP_TOKEN", valueFrom: { secretKeyRef: { name: tokenSecret, key: "token" } } }]
    : [];

const deployment = new k8s.apps.v1.Deployment("consul-example-app", {
    metadata: { namespace, labels: appLabels },
    spec: {
        replicas: 1,
        selector: { matchLabels: appLabels },
        template: {
            metadata: { labels: appLabels },
            spec: {
                automountServiceAccountToken: false,
                securityContext: { runAsNonRoot: true, runAsUser: 100, seccompProfile: { type: "RuntimeDefault" } },
                volumes: [consul.volume],
                containers: [
                    {
                        name: "app",
                        image,
                        // The consul CLI reads CONSUL_HTTP_ADDR, CONSUL_CACERT and CONSUL_TLS_SERVER_NAME.
                        command: ["/bin/sh", "-c", startScript],
                        env: consul.env.apply((env) => [...env, podName, ...tokenEnv]),
                        volumeMounts: [consul.volumeMount],
                        resources: {
                            requests: { cpu: "10m", memory: "32Mi" },
                            limits: { cpu: "100m", memory: "64Mi" },
                        },
                        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
                    },
                ],
            },
        },
    },
});

export const deploymentName = deployment.metadata.name;
export const consulHttpAddr = consulStack.getOutput("consulHttpAddr");
