// Example application stack: a Deployment whose container uses the consul CLI against its
// node-local agent over HTTPS, verifying the agent's certificate with the cluster CA.
// Deploy from this directory: `npm ci` at the repository root, then
// `pulumi config set consulStack acme/consul/dev && pulumi up`.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { kubernetesConsulAccess } from "../../app";

const config = new pulumi.Config();
const consulStack = new pulumi.StackReference(config.require("consulStack"));
const namespace = config.get("namespace") ?? "apps";
const tokenSecret = config.get("tokenSecret") ?? "";

const consul = kubernetesConsulAccess(consulStack);
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
                        image: "hashicorp/consul:1.16.2",
                        // The consul CLI reads CONSUL_HTTP_ADDR, CONSUL_CACERT and CONSUL_TLS_SERVER_NAME.
                        command: ["/bin/sh", "-c", "while true; do consul catalog services; sleep 30; done"],
                        env: consul.env.apply((env) => [...env, ...tokenEnv]),
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
