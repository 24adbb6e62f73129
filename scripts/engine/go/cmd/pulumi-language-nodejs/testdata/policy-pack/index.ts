// A policy pack for the language host's Go tests: its one rule reports what the pack learnt from the
// environment the host's policy proxy set (stack, project, a config value), so the test can check it.
import * as pulumi from "@pulumi/pulumi";
import { PolicyPack } from "@pulumi/policy";

new PolicyPack("langhost-test-pack", {
    policies: [
        {
            name: "reports-context",
            description: "Reports the stack, project and test:greeting the language host passed on.",
            enforcementLevel: "mandatory",
            validateResource: (args, report) => {
                const greeting = new pulumi.Config("test").get("greeting") ?? "unset";
                report(
                    `stack=${pulumi.getStack()} project=${pulumi.getProject()} greeting=${greeting} type=${args.type}`,
                );
            },
        },
    ],
});
