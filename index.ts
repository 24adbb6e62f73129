import * as pulumi from "@pulumi/pulumi";
import * as consul from "./components";

// Every setting is validated here, before any resource is registered.
const settings = consul.loadSettings();
const cluster = new consul.ConsulCluster("consul", settings);

export const topology = settings.topology;
export const datacenter = settings.datacenter;
export const domain = settings.domain;
/** Put this in CONSUL_HTTP_ADDR (on Kubernetes, after a HOST_IP downward-API variable). */
export const consulHttpAddr = consul.consulHttpAddr(settings);
/** Kubernetes apps: CONSUL_TLS_SERVER_NAME, the name on the node-local agents' HTTPS certificate. */
export const consulTlsServerName = settings.kubernetes ? consul.clientTlsName(settings) : "";
export const caCertPem = cluster.pki.caCertPem;
export const serverAddresses = consul.serverAddresses(settings);
export const gossipKey = cluster.gossipKey.key;
/** Empty in a federation secondary: use the primary's, a global token. */
export const aclManagementToken = cluster.aclTokens?.managementToken ?? pulumi.secret("");
export const cliCertPem = pulumi.secret(cluster.pki.cliCert.certPem);
export const cliKeyPem = cluster.pki.cliCert.privateKeyPem;
/** vm topology: the Consul CLI environment on server hosts, client hosts and an operator's machine. */
export const cliEnvironment = cluster.vm?.cliEnvironment ?? {};
/** consul:appTokens: each app's ACL token SecretID by app name, for the app stacks (secret). */
export const appTokens = pulumi.secret(pulumi.all(cluster.vm?.appTokens ?? {}));
/** vm topology, telemetry and ACLs on: the token Prometheus scrapes with (consul-metrics policy). */
export const metricsToken = cluster.vm?.metricsToken?.token ?? pulumi.secret("");
/** vm topology, telemetry on: Prometheus' scrape_configs (YAML), finding every agent through Consul. */
export const prometheusScrapeConfig = consul.prometheusScrapeConfigYaml(settings);
/** A federation primary: what its secondaries read through a StackReference (secret; empty otherwise). */
export const federation = cluster.federation?.exported ?? pulumi.secret({});
