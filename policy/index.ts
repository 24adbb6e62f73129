// The policy pack: `pulumi preview --policy-pack policy` (or `pulumi up --policy-pack policy`)
// from the repository root. The rules live in rules.ts so the tests can run them without the
// analyzer server this constructor starts.
import { PolicyPack } from "@pulumi/policy";
import { resourcePolicies, stackPolicies } from "./rules";

new PolicyPack("consul-security", {
    enforcementLevel: "mandatory",
    policies: [...resourcePolicies, ...stackPolicies],
});
