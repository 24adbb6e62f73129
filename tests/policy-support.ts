// Runs the policy pack's stack rules over what the mocks recorded, shaped as the analyzer hands
// resources to a policy (shared by tests/policy.test.ts and the federation tests).

import { PolicyResource, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import type { RecordedResource } from "./mocks";

export const urnOf = (stack: string, type: string, name: string) => `urn:pulumi:${stack}::consul::${type}::${name}`;

export function asPolicyResource(r: RecordedResource, stack: string): PolicyResource {
    return {
        type: r.type,
        name: r.name,
        urn: urnOf(stack, r.type, r.name),
        props: r.state,
        opts: {} as PolicyResource["opts"],
        dependencies: [],
        propertyDependencies: {},
    } as unknown as PolicyResource;
}

export function checkStack(policy: StackValidationPolicy, resources: PolicyResource[]): string[] {
    const violations: string[] = [];
    void policy.validateStack({ resources, getConfig: () => ({}) } as unknown as StackValidationArgs, (m) =>
        violations.push(m),
    );
    return violations;
}
