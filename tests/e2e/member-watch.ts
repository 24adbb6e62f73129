// A 1-second poll of the member list that records every sample in which a member was not alive:
// what "every member stays alive throughout" is measured with (the gossip-key rotation).

import { Member, membersAt } from "./checks";
import { KvAccess } from "./kv-checks";

/** Polls the member list every second, and records every sample in which a member was not alive. */
export class MemberWatch {
    samples = 0;
    readonly notAlive: string[] = [];
    private running = true;
    private readonly done: Promise<void>;

    constructor(address: () => string, access: KvAccess, names: readonly string[]) {
        this.done = (async () => {
            while (this.running) {
                const at = new Date().toISOString();
                try {
                    const members = await membersAt(address(), access);
                    for (const name of names) {
                        const m = members.find((x: Member) => x.Name === name);
                        if (!m || m.Status !== 1) this.notAlive.push(`${at} ${name} status ${m?.Status ?? "absent"}`);
                    }
                } catch (e) {
                    this.notAlive.push(`${at} the member list did not answer: ${(e as Error).message}`);
                }
                this.samples++;
                await new Promise((r) => setTimeout(r, 1000));
            }
        })();
    }

    async stop(): Promise<void> {
        this.running = false;
        await this.done;
    }
}
