// The steps the command prints after a recovery must be configs the program accepts: serverHosts
// (dead ones included) always holds an odd count, so an even number of dead servers is replaced in
// one pulumi up (with deadHosts), an odd number is pruned first and replaced next.

import * as assert from "assert";
import { parseSettings } from "../../components/config";
import { nextSteps, RecoveryPlan } from "../../components/recovery";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n";

/** Whether the program accepts these server hosts (names s1...) with these dead. */
function accepted(servers: number[], dead: number[]): boolean {
    const raw = {
        topology: "vm",
        serverCount: String(servers.length),
        serverHosts: JSON.stringify(servers.map((i) => `s${i}=10.0.0.${i}`)),
        deadHosts: JSON.stringify(dead.map((i) => `s${i}`)),
        sshPrivateKey: KEY,
    };
    try {
        parseSettings(raw, "consul", "dev", { secretKeys: new Set(["sshPrivateKey"]) });
        return true;
    } catch {
        return false;
    }
}

function plan(survivors: number[], dead: number[]): RecoveryPlan {
    return {
        survivors: survivors.map((i) => ({ name: `s${i}`, nodeId: "", raftAddress: "" })),
        peers: [],
        dead: dead.map((i) => `s${i}`),
        raftBefore: [],
    };
}

describe("next steps after a recovery", () => {
    it("2 of 3 dead: new hosts in with the dead ones in deadHosts, then the dead dropped; both configs valid", () => {
        const text = nextSteps(plan([1], [2, 3]), "prod");
        assert.match(
            text,
            /1\. add 2 replacement host\(s\) to consul:serverHosts .* list s2, s3\n\s+in consul:deadHosts/,
        );
        assert.match(text, /2\. drop s2, s3 from consul:serverHosts and consul:deadHosts/);
        assert.ok(accepted([1, 2, 3, 4, 5], [2, 3]), "step 1");
        assert.ok(accepted([1, 4, 5], []), "step 2");
    });

    it("3 of 5 dead: pruned first, then replaced, because adding hosts alongside the dead leaves an even count", () => {
        const text = nextSteps(plan([1, 2], [3, 4, 5]), "prod");
        assert.match(text, /1\. list s3, s4, s5 in consul:deadHosts \(serverHosts and serverCount as they are\)/);
        assert.match(text, /so that serverHosts holds an odd count/);
        assert.ok(accepted([1, 2, 3, 4, 5], [3, 4, 5]), "step 1");
        assert.ok(accepted([1, 2, 6], []), "step 2");
        // The one-step way is refused at one of its two updates, whatever the number of new hosts.
        assert.ok(!accepted([1, 2, 3, 4, 5, 6, 7], [3, 4, 5]) || !accepted([1, 2, 6, 7], []));
        assert.ok(!accepted([1, 2, 3, 4, 5, 6], [3, 4, 5]));
    });
});
