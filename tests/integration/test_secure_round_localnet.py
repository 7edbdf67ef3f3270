"""SecAgg+ with robust aggregation end to end on a real 4-validator localnet.

Ten trainers take part in one secure round of a task whose policy is the coordinate-wise median
across SecAgg groups of 3 (10 // 3 = 3 groups of 4, 3 and 3). Two trainers drop after sharing
their secrets, two are Byzantine. Every stage is a signed tx; the aggregator fixes the survivors
on chain, the survivors reveal shares, and the aggregator unmasks each group and publishes.

Group-wise SecAgg tolerates Byzantine *groups*: the aggregator sees group sums only, so a single
Byzantine member contaminates its whole group (the trade-off documented in sdk/secagg). With 3
groups the median tolerates one bad group, so the test, which knows the public partition drawn
from the opening block's hash, puts both attackers in one group, and one dropout in each other
group. It then checks that:
- the version is published from the survivors, with the dropouts' masks removed (the median of
  the group means equals the honest update, which it could not if a mask were left in);
- the Byzantine group is flagged in reputation, and the honest-only groups are not;
- a second node recomputes the published version bit for bit (`aggregator verify`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import numpy as np
import pytest

from fedledger.abci_app.did.credentials import did_of_key
from fedledger.client.secure_client import SecureParticipant, Update
from fedledger.ipfs import ContentStore, open_store
from fedledger.localnet import manager
from fedledger.localnet.dev import dev_credential
from fedledger.localnet.ports import find_free_base_port
from fedledger.node.aggregator import Aggregator
from fedledger.node.verify import verify_version
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.keys import Key
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.secure_plan import plan_round
from fedledger.sdk.steps import Action, Step
from fedledger.sdk.submit import Submitter
from fedledger.sdk.tensors import decode_tensors, encode_tensors
from tests.support import named_key, use_pinned_cometbft

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

TASK = "secure-e2e"
DIM = 64
HONEST = 0.1
DP = {"noise_multiplier": "1", "sample_rate": "0.05", "steps": 10, "clip_norm": "1"}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, CometRPC, str]]:
    restore = use_pinned_cometbft()
    home = tmp_path_factory.mktemp("secure") / "net"
    rpc: CometRPC | None = None
    try:
        manager.up(home, validators=4, base_port=find_free_base_port(40), block_time_ms=250, timeout=90,
                   log=lambda m: None)
        rpc = CometRPC(manager.rpc_url(home, 0))
        yield home, rpc, str(rpc.status()["node_info"]["network"])
    finally:
        if rpc is not None:
            rpc.close()
        restore()
        manager.down(home)


def _admit(home: Path, rpc: CometRPC, chain_id: str, agg_key: Key, trainers: list[Key],
           task_id: str) -> dict[str, Submitter]:
    """Admit the aggregator and the trainers for one task (so other tests' trainers are never selected)."""
    subs = {k.public_hex: Submitter(rpc, k, chain_id) for k in [agg_key, *trainers]}
    hashes = [(subs[k.public_hex], subs[k.public_hex].broadcast("admit", {"credential": dev_credential(
        home, k, "aggregator" if k is agg_key else "trainer", tasks=[task_id])})) for k in [agg_key, *trainers]]
    for sub, h in hashes:
        sub.wait(h)
    return subs


def _create_task(agg: Submitter, store: ContentStore, task_id: str, round_size: int, min_contributions: int,
                 deadline_blocks: int, aggregation: dict[str, Any]) -> Aggregator:
    """Create a task on a zero model of DIM parameters and return its aggregator (one round)."""
    base = encode_tensors({"w": np.zeros(DIM, dtype=np.float32)})
    cid = store.put(base)
    agg.send("create_task", {
        "task_id": task_id, "model_spec": "synthetic", "round_size": round_size,
        "min_contributions": min_contributions, "deadline_blocks": deadline_blocks, "aggregator": agg.key.public_hex,
        "initial_model": {"cid": cid, "sha256": hashlib.sha256(base).hexdigest(), "size": len(base)},
        "privacy": {"epsilon": "50", "delta": "1e-5", "org_epsilon": None}, "aggregation": aggregation})
    return Aggregator(agg, store, task_id, max_rounds=1)


def _update(value: float, seed: int) -> Update:
    rng = np.random.default_rng(seed)
    delta = (value + rng.normal(0, 0.001, DIM)).astype(np.float32)
    return Update({"w": delta}, 100, dict(DP))


@pytest.mark.parametrize("sparse_ppm", [None, 500_000])
def test_secure_robust_round_with_dropouts_and_byzantine_clients(net: tuple[Path, CometRPC, str],
                                                                 sparse_ppm: int | None) -> None:
    """Dense, and with half the coordinates shared per round (the masks still cancel on the subset)."""
    home, rpc, chain_id = net
    task_id = TASK if sparse_ppm is None else f"{TASK}-sparse"
    store = open_store(manager.store_spec(home) or "")
    agg_key = named_key(f"{task_id}-agg")
    trainers = [named_key(f"{task_id}-trainer-{i}") for i in range(10)]
    subs = _admit(home, rpc, chain_id, agg_key, trainers, task_id)
    secure = {"group_size": 3, "clip": "1.0", "threshold_pct": 50, "stage_blocks": 8, "sparse_ppm": sparse_ppm}
    aggregator = _create_task(subs[agg_key.public_hex], store, task_id, 10, 4, 12,
                              {"rule": "median", "byzantine": 1, "secure": secure})
    assert aggregator.step() == Step(Action.OPENED_ROUND, "opened round 1", round=1)

    view = ChainView(rpc)
    task, rnd = view.task(task_id), view.round(task_id, 1)
    assert sorted(rnd["selected"]) == sorted(k.public_hex for k in trainers)
    plan = plan_round(task, rnd, DIM)
    by_hex = {k.public_hex: k for k in trainers}
    groups = [[by_hex[plan.participants[i]] for i in g.members] for g in plan.groups]
    assert sorted(len(g) for g in groups) == [3, 3, 4]
    bad_group = max(range(3), key=lambda g: len(groups[g]))
    byzantine = groups[bad_group][:2]
    dropouts = [groups[g][0] for g in range(3) if g != bad_group]

    def make(key: Key) -> SecureParticipant:
        value = -5.0 if key in byzantine else HONEST  # sign flip, scaled: clipped to -1 by quantization
        seed = trainers.index(key)
        return SecureParticipant(subs[key.public_hex], store, task_id, lambda t, r, b: _update(value, seed))

    participants = {k.public_hex: make(k) for k in trainers}
    deadline = time.monotonic() + 300
    log: list[str] = []
    while view.round(task_id, 1)["status"] not in ("aggregated", "failed"):
        assert time.monotonic() < deadline, f"round did not finish; last steps {log[-15:]}"
        stage = view.round(task_id, 1)["secagg"]["stage"]
        for key in trainers:
            if key in dropouts and stage not in ("keys", "shares"):
                continue  # they shared their secrets, then vanished before sending masked inputs
            log.append(f"{key.name}: {participants[key.public_hex].step()}")
        log.append(f"agg: {aggregator.step()}")
        time.sleep(0.3)

    rnd = view.round(task_id, 1)
    sa = rnd["secagg"]
    survivors = sorted(k.public_hex for k in trainers if k not in dropouts)
    assert rnd["status"] == "aggregated", rnd
    assert sa["sharers"] == sorted(k.public_hex for k in trainers)
    assert sa["survivors"] == survivors
    version = view.version(task_id, rnd["version"])
    model = decode_tensors(store.get(version["cid"], version["sha256"]))
    # The median of the group means is an honest group's mean: every mask was removed exactly, so
    # it is the honest update up to quantization (2 / 2^30 per step) and the tiny per-client jitter.
    if plan.coords is None:
        assert np.allclose(model["w"], HONEST, atol=0.01), model["w"][:5]
    else:  # only the round's shared coordinates moved; each client keeps the rest for later rounds
        assert len(plan.coords) == DIM // 2
        assert np.allclose(model["w"][plan.coords], HONEST, atol=0.01), model["w"][:5]
        assert np.count_nonzero(np.delete(model["w"], plan.coords)) == 0
    flagged = sorted(d["participant"] for d in version["dropped"] if d["reason"] == "robust_flagged")
    bad_members = sorted(k.public_hex for k in groups[bad_group])
    assert flagged == bad_members
    assert sorted(version["contributors"]) == sorted(set(survivors) - set(bad_members))
    for key in byzantine:
        history = view.get(f"/reputation-history/{did_of_key(key.public_hex)}")
        assert any(ev.get("reason") == "robust_flagged" for ev in history["entries"]), history

    check = verify_version(view, store, task_id, int(rnd["version"]))
    assert check.ok and check.secure, check


def test_plaintext_robust_round_with_compressed_payloads(net: tuple[Path, CometRPC, str]) -> None:
    """Five trainers send 8-bit payloads and one sign-flips: median + guard flag it; a second node recomputes."""
    from fedledger.client.runner import contribute_update
    from fedledger.sdk.compression.payload import UpdateEncoder

    home, rpc, chain_id = net
    store = open_store(manager.store_spec(home) or "")
    task_id = "plain-q8"
    agg_key = named_key("plain-agg")
    trainers = [named_key(f"plain-trainer-{i}") for i in range(5)]
    subs = _admit(home, rpc, chain_id, agg_key, trainers, task_id)
    aggregator = _create_task(subs[agg_key.public_hex], store, task_id, 5, 3, 30,
                              {"rule": "median", "byzantine": 1, "compression": {"method": "quant8"}})
    assert aggregator.step() == Step(Action.OPENED_ROUND, "opened round 1", round=1)
    attacker = trainers[0]
    sizes = []
    for i, key in enumerate(trainers):
        update = _update(-5.0 if key is attacker else HONEST, 100 + i)
        payload = UpdateEncoder({"method": "quant8"}).encode(update.delta)
        sizes.append(len(payload))
        contribute_update(subs[key.public_hex], store, task_id, 1, 0, payload, update.num_examples, update.dp)
    assert max(sizes) < len(encode_tensors(update.delta)) / 3  # 8 bits a value instead of 32
    view = ChainView(rpc)
    assert aggregator.step() == Step(Action.CLOSED_ROUND, "closed round 1", round=1)
    assert aggregator.step() == Step(Action.PROPOSED_VERSION, ANY, round=1, version=1)
    version = view.version(task_id, 1)
    model = decode_tensors(store.get(version["cid"], version["sha256"]))
    assert np.allclose(model["w"], HONEST, atol=0.02), model["w"][:5]
    assert version["dropped"] == [{"participant": attacker.public_hex, "reason": "robust_flagged"}]
    assert attacker.public_hex not in version["contributors"] and len(version["contributors"]) == 4
    check = verify_version(view, store, task_id, 1)
    assert check.ok and not check.secure and check.inputs == 5, check


def test_central_dp_round_moves_the_clip_and_refuses_recomputation(net: tuple[Path, CometRPC, str]) -> None:
    """Central noise with adaptive clipping: the aggregator noises the mean, the chain stores the next clip."""
    from fedledger.client.runner import contribute_update
    from fedledger.node.verify import VerifyError

    home, rpc, chain_id = net
    store = open_store(manager.store_spec(home) or "")
    task_id = "central-ada"
    agg_key = named_key("central-agg")
    trainers = [named_key(f"central-trainer-{i}") for i in range(3)]
    subs = _admit(home, rpc, chain_id, agg_key, trainers, task_id)
    adaptive = {"target_quantile": "0.5", "learning_rate": "0.2", "bit_noise": "2"}
    aggregator = _create_task(subs[agg_key.public_hex], store, task_id, 3, 3, 30, {
        "rule": "fedavg", "central_noise": {"noise_multiplier": "1", "clip": "0.1", "adaptive": adaptive}})
    assert aggregator.step() == Step(Action.OPENED_ROUND, "opened round 1", round=1)
    for i, key in enumerate(trainers):  # norms ~0.8, all above the starting clip of 0.1
        update = _update(HONEST, 200 + i)
        contribute_update(subs[key.public_hex], store, task_id, 1, 0, encode_tensors(update.delta),
                          update.num_examples, update.dp)
    assert aggregator.step() == Step(Action.CLOSED_ROUND, "closed round 1", round=1)
    assert aggregator.step() == Step(Action.PROPOSED_VERSION, ANY, round=1, version=1)
    view = ChainView(rpc)
    clip = float(view.task(task_id)["aggregation"]["central_noise"]["clip"])
    assert clip != 0.1 and clip > 0, clip  # the bits are noised (σ_b = 2 over 3 clients), so only "moved"
    with pytest.raises(VerifyError, match="central DP noise"):
        verify_version(view, store, task_id, 1)
