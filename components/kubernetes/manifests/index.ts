// Pure builders for the Kubernetes objects: settings in, typed manifest pieces out. The components
// (servers.ts, clients.ts, acl-job.ts one folder up) only wrap them in resources, so every field can
// be read by a test without a Pulumi engine.

export * from "./common";
export * from "./agent-config";
export * from "./pod";
export * from "./servers";
export * from "./clients";
export * from "./acl-job";
export * from "./namespaces";
export * from "./server-count-job";
