// The policies of the pack, as plain objects so tests can call validateResource/validateStack
// directly (constructing a PolicyPack starts the analyzer's gRPC server, so index.ts alone does it).

import { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import {
    aclDefaultDeny,
    containerResources,
    gossipEncryption,
    noSecretInConfigMapOrArgs,
    oddServerCount,
    pinnedSshHostKeys,
    tlsVerification,
} from "./resource-rules";
import { caKeyConfined, noKnownSecretExposed } from "./stack-rules";

export * from "./inspect";
export * from "./resource-rules";
export * from "./stack-rules";

export const resourcePolicies: readonly ResourceValidationPolicy[] = [
    tlsVerification,
    gossipEncryption,
    aclDefaultDeny,
    pinnedSshHostKeys,
    oddServerCount,
    containerResources,
    noSecretInConfigMapOrArgs,
];

export const stackPolicies: readonly StackValidationPolicy[] = [caKeyConfined, noKnownSecretExposed];
