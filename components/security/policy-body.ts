// The body of PUT /v1/acl/policy for every policy the program upserts (agent, snapshot, DNS,
// metrics, apps).

import { renderJson } from "../agent";

/** The policy as the ACL API takes it, on one line (it travels as a script parameter). */
export function aclPolicyBody(name: string, description: string, rules: Record<string, unknown>): string {
    const oneLine = (value: unknown) => JSON.stringify(JSON.parse(renderJson(value)));
    return oneLine({ Name: name, Description: description, Rules: oneLine(rules) });
}
