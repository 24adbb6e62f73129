// The vm and hybrid topologies' hosts: the rollout plan, each host's files and systemd unit, the
// scripts that apply them over SSH, and the components that carry them.

export * from "./cluster";
export * from "./node";
export * from "./plan";
export * from "./scripts";
export * from "./keyring";
export * from "./systemd";
export * from "./paths";
export * from "./bundle";
export * from "./host-files";
export * from "./cli-environment";
export * from "./snapshot";
export * from "./dns";
export * from "./app-tokens";
export * from "./acl-steps";
