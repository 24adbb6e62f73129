// The decision to write peers.json: the one case it goes ahead (2 of 3 servers dead, named, the
// survivor agreeing with the config), and each case it must refuse, each for its own reason.

import * as assert from "assert";
import type { Host } from "../../components/config";
import { decideRecovery, DecisionInput, HostReport, Observation, RaftPeer } from "../../components/recovery";

const ID = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
];
const servers: Host[] = [1, 2, 3].map((i) => ({
    name: `s${i}`,
    address: `10.0.0.1${i}`,
    addressIsIp: true,
    sshPort: 22,
}));
const raft: RaftPeer[] = servers.map((s, i) => ({
    id: ID[i],
    node: s.name,
    address: `${s.address}:8300`,
    voter: true,
}));

function report(i: number, extra: Partial<HostReport> = {}): HostReport {
    return {
        active: "active",
        nodeId: ID[i],
        raftData: true,
        peersJson: false,
        apiUp: true,
        leader: "",
        raft,
        ...extra,
    };
}
const alive = (i: number, extra: Partial<HostReport> = {}): Observation => ({
    name: servers[i].name,
    reachable: true,
    report: report(i, extra),
});
const gone = (i: number): Observation => ({ name: servers[i].name, reachable: false, error: "No route to host" });

const lost: DecisionInput = { servers, observations: [alive(0), gone(1), gone(2)], dead: ["s2", "s3"], rpcPort: 8300 };

function refusal(input: DecisionInput): string {
    const d = decideRecovery(input);
    assert.ok(!d.ok, "it went ahead");
    return d.reasons.join("\n");
}

describe("lost-quorum decision", () => {
    it("goes ahead with the survivor alone when the other two are named dead and silent", () => {
        const d = decideRecovery(lost);
        assert.ok(d.ok, d.ok ? "" : d.reasons.join("\n"));
        assert.deepStrictEqual(d.plan.peers, [{ id: ID[0], address: "10.0.0.11:8300", non_voter: false }]);
        assert.deepStrictEqual(
            d.plan.survivors.map((s) => s.name),
            ["s1"],
        );
        assert.deepStrictEqual(d.plan.dead, ["s2", "s3"]);
    });

    it("with 5 servers and 3 dead, both survivors in serverHosts order", () => {
        const five: Host[] = [
            ...servers,
            { ...servers[0], name: "s4", address: "10.0.0.14" },
            { ...servers[0], name: "s5", address: "10.0.0.15" },
        ];
        const ids = [...ID, "44444444-4444-4444-8444-444444444444", "55555555-5555-4555-8555-555555555555"];
        const raft5 = five.map((s, i) => ({ id: ids[i], node: s.name, address: `${s.address}:8300`, voter: true }));
        const obs = (i: number): Observation => ({
            name: five[i].name,
            reachable: true,
            report: { ...report(0), nodeId: ids[i], raft: raft5 },
        });
        const d = decideRecovery({
            servers: five,
            observations: [gone(0), obs(1), gone(2), { ...gone(0), name: "s4" }, obs(4)],
            dead: ["s1", "s3", "s4"],
            rpcPort: 8300,
        });
        assert.ok(d.ok, d.ok ? "" : d.reasons.join("\n"));
        assert.deepStrictEqual(
            d.plan.peers.map((p) => p.address),
            ["10.0.0.12:8300", "10.0.0.15:8300"],
        );
    });

    it("refuses when a leader exists: quorum is not lost", () => {
        assert.match(
            refusal({ ...lost, observations: [alive(0, { leader: "10.0.0.12:8300" }), gone(1), gone(2)] }),
            /s1 sees a leader \(10\.0\.0\.12:8300\): quorum is not lost/,
        );
    });

    it("refuses when the operator named no dead server, and says which ones are silent", () => {
        assert.match(
            refusal({ ...lost, dead: [] }),
            /name the servers that are gone for good with --dead \(e\.g\. --dead s2,s3\)/,
        );
    });

    it("refuses when a server named dead answers", () => {
        assert.match(
            refusal({ ...lost, observations: [alive(0), alive(1), gone(2)] }),
            /s2 is named dead but answers over SSH/,
        );
    });

    it("refuses when a silent server is not named dead", () => {
        assert.match(
            refusal({ ...lost, dead: ["s2"] }),
            /s3 cannot be reached \(No route to host\) and is not named dead/,
        );
    });

    it("refuses a dead name that is not a configured server", () => {
        assert.match(
            refusal({ ...lost, dead: ["s2", "s3", "s9"] }),
            /--dead names s9, which is not in consul:serverHosts/,
        );
    });

    it("refuses when a survivor's node-id is missing or not a node ID", () => {
        assert.match(
            refusal({ ...lost, observations: [alive(0, { nodeId: undefined }), gone(1), gone(2)] }),
            /s1 has no node-id file/,
        );
        assert.match(
            refusal({ ...lost, observations: [alive(0, { nodeId: "garbage" }), gone(1), gone(2)] }),
            /holds no node ID \("garbage"\)/,
        );
    });

    it("refuses when a survivor has no Raft data, or its agent's view is unknown", () => {
        assert.match(
            refusal({ ...lost, observations: [alive(0, { raftData: false }), gone(1), gone(2)] }),
            /s1 has no Raft data/,
        );
        assert.match(
            refusal({
                ...lost,
                observations: [
                    alive(0, { active: "failed", apiUp: false, leader: undefined, raft: undefined }),
                    gone(1),
                    gone(2),
                ],
            }),
            /s1's agent is failed and its API does not answer/,
        );
    });

    it("refuses when a survivor answers but its inspection failed (no root, say)", () => {
        const failed: Observation = { name: "s1", reachable: true, error: "s1 inspect: FAILED: must run as root" };
        assert.match(
            refusal({ ...lost, observations: [failed, gone(1), gone(2)] }),
            /s1 answered over SSH but its inspection failed \(s1 inspect: FAILED: must run as root\)/,
        );
    });

    it("refuses when the survivors disagree about the Raft configuration", () => {
        const input: DecisionInput = {
            ...lost,
            observations: [alive(0), alive(1, { raft: raft.slice(0, 2) }), gone(2)],
            dead: ["s3"],
        };
        assert.match(refusal(input), /the survivors disagree about the Raft configuration/);
    });

    it("refuses when a survivor is not in its own Raft configuration, or at another address than the config says", () => {
        assert.match(
            refusal({ ...lost, observations: [alive(0, { raft: raft.slice(1) }), gone(1), gone(2)] }),
            /s1's node ID .* is not in its own Raft configuration/,
        );
        const moved = [{ ...raft[0], address: "10.0.0.99:8300" }, raft[1], raft[2]];
        assert.match(
            refusal({ ...lost, observations: [alive(0, { raft: moved }), gone(1), gone(2)] }),
            /s1 is at 10\.0\.0\.99:8300 in the Raft configuration, but consul:serverHosts/,
        );
    });

    it("refuses two survivors with one node ID", () => {
        const input: DecisionInput = {
            ...lost,
            observations: [alive(0), alive(1, { nodeId: ID[0] }), gone(2)],
            dead: ["s3"],
        };
        assert.match(refusal(input), /s1 and s2 have the same node ID 11111111-/);
    });

    it("refuses a Raft peer that is neither a survivor nor named dead", () => {
        const extra = [
            ...raft,
            { id: "99999999-9999-4999-8999-999999999999", node: "stranger", address: "10.0.0.50:8300", voter: true },
        ];
        const obs = [alive(0, { raft: extra }), gone(1), gone(2)];
        assert.match(
            refusal({ ...lost, observations: obs }),
            /the Raft configuration has stranger .* neither a surviving server nor named in --dead/,
        );
    });

    it("refuses when the survivors are a majority already", () => {
        const input: DecisionInput = { ...lost, observations: [alive(0), alive(1), gone(2)], dead: ["s3"] };
        assert.match(refusal(input), /the survivors are 2 of the 3 voters, a majority/);
    });

    it("refuses when no server survives", () => {
        assert.match(
            refusal({ ...lost, observations: [gone(0), gone(1), gone(2)], dead: ["s1", "s2", "s3"] }),
            /no server survives/,
        );
    });
});
