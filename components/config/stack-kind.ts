// Which stacks are development stacks: the one rule that config validation and the policy pack share.

/**
 * A development stack is named `dev` or `test`, alone or followed by `-`, `_` or `.` and more
 * (`dev-alice`, `test.e2e`). Only these may run allow-by-default ACLs or reach hosts whose SSH
 * host keys are not pinned; every other stack (prod, staging, devops, …) may not.
 */
export function isDevelopmentStack(stack: string): boolean {
    return /^(dev|test)([-_.]|$)/.test(stack);
}

/** How the rule reads in messages and the config reference. */
export const DEVELOPMENT_STACKS = "dev or test, alone or followed by -, _ or . (dev-alice, test.e2e)";
