import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { gossipKeyFromSeed, SEED_LENGTH } from "./secret-seeds";

export interface GossipKeyArgs {
    /**
     * Changing the keeper generates a new key. Nothing else does: a key that changed by accident
     * would lock new nodes out of a cluster whose keyring still holds the old one.
     */
    keeper: string;
}

/** Where a datacenter's gossip key comes from: its own GossipKey, or a federation primary's. */
export interface GossipKeySource {
    /** Base64 of 32 bytes; a secret. */
    readonly key: pulumi.Output<string>;
}

/** The Serf gossip encryption key: 32 random bytes, standard base64, as `consul keygen` prints. */
export class GossipKey extends pulumi.ComponentResource implements GossipKeySource {
    /** Base64 of 32 bytes; a secret. */
    public readonly key: pulumi.Output<string>;

    constructor(name: string, args: GossipKeyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:GossipKey", name, {}, opts);
        // Not RandomBytes: its ID is the key itself, stored unencrypted in the state.
        const seed = new random.RandomPassword(
            `${name}-seed`,
            { length: SEED_LENGTH, special: false, keepers: { keeper: args.keeper } },
            { parent: this, additionalSecretOutputs: ["result", "bcryptHash"] },
        );
        this.key = pulumi.secret(seed.result.apply(gossipKeyFromSeed));
        this.registerOutputs({ key: this.key });
    }
}
