// Security material: the CA and certificates, the gossip key, ACL tokens and the agent policy, and
// the key Consul releases are signed with.

export * from "./pki";
export * from "./gossip";
export * from "./acl-tokens";
export * from "./agent-policy";
export * from "./snapshot-policy";
export * from "./metrics-policy";
export * from "./secret-seeds";
export * from "./release-trust";
