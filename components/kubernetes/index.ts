// The kubernetes and hybrid topologies' workloads: the server StatefulSet, the client DaemonSet,
// the ACL Job, the server-count Job, and the namespace, provider and CA ConfigMaps they share.

export * from "./base";
export * from "./servers";
export * from "./clients";
export * from "./acl-job";
export * from "./server-count-job";
export * from "./manifests";
export * from "./scripts";
