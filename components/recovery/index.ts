// Lost-quorum recovery on the VM servers (scripts/recover-quorum.ts is the command): what each
// server reports, whether peers.json can be written safely, the file itself, and the host scripts.

export * from "./decide";
export * from "./observe";
export * from "./peers";
export * from "./scripts";
export * from "./ssh";
export * from "./stack-config";
export * from "./report";
export * from "./remote";
