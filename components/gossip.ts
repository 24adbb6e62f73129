import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export interface GossipKeyArgs {
    /**
     * Changing the keeper generates a new key. Nothing else does: a key that changed by accident
     * would lock new nodes out of a cluster whose keyring still holds the old one.
     */
    keeper: string;
}

/** The Serf gossip encryption key: 32 random bytes, standard base64, as `consul keygen` prints. */
export class GossipKey extends pulumi.ComponentResource {
    /** Base64 of 32 bytes; a secret. */
    public readonly key: pulumi.Output<string>;

    constructor(name: string, args: GossipKeyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:index:GossipKey", name, {}, opts);
        const bytes = new random.RandomBytes(
            `${name}-bytes`,
            { length: 32, keepers: { keeper: args.keeper } },
            { parent: this, additionalSecretOutputs: ["base64", "hex"] },
        );
        this.key = pulumi.secret(bytes.base64);
        this.registerOutputs({ key: this.key });
    }
}
