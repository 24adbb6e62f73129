// Security material: the CA and certificates, the gossip key, ACL tokens, the agent, snapshot and
// DNS, metrics, app and replication policies, and the key Consul releases are signed with.

export * from "./pki";
export * from "./gossip";
export * from "./acl-tokens";
export * from "./agent-policy";
export * from "./snapshot-policy";
export * from "./dns-policy";
export * from "./metrics-policy";
export * from "./secret-seeds";
export * from "./release-trust";
export * from "./app-policy";
export * from "./replication-policy";
