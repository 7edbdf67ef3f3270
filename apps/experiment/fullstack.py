"""The full-stack mode: the FedLedger method on a real localnet (CometBFT validators, a content store, services).

A run here is the fast mode's run (`onchain.py`) with every in-process shortcut replaced by the
product itself:
- the chain is a 4-validator CometBFT localnet started by `fedledger.localnet.manager`, and
  every tx is broadcast and waited for like any client's;
- payloads go to the localnet's content store (Kubo by default) and are fetched and hash-checked;
- trainers are `SecureParticipant`s (secure tasks) or `contribute_update` callers (plaintext),
  the aggregator is `node.aggregator.Aggregator` and the evaluator `node.evaluator.Evaluator`, the
  very classes `fedledger client run`, `aggregator run` and `evaluator run` drive; this process
  steps them in turn instead of running them as separate daemons.

What stays the same as in the fast mode, so both modes give the same model for the same config:
the task (`onchain.task_body`), the training of each selected client (`common.round_updates`,
seeded by run, round and client), availability and dropout draws, and the evaluators' canary set.
What differs is the chain's randomness: block hashes (selection order, SecAgg groups) come from
real consensus, so configs whose outcome depends on the partition give different, equally valid
models in the two modes; `tests/integration/test_experiment_fullstack.py` pins the configs where
the outcome cannot depend on it.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import numpy as np

from fedledger.abci_app.errors import FedLedgerError
from fedledger.abci_app.modules.federation.records import PayloadRef, RoundRecord, TaskRecord
from fedledger.apps.experiment.common import (
    ClientUpdate,
    RunContext,
    RunResult,
    dropped_positions,
    online_clients,
    round_updates,
)
from fedledger.apps.experiment.onchain import RoundFigures, drive_rounds, task_body
from fedledger.client.receipt import ContributionReceipt
from fedledger.client.runner import contribute_update
from fedledger.client.secure_client import SecureParticipant, Update
from fedledger.ipfs import ContentStore, open_store
from fedledger.localnet.dev import dev_credential
from fedledger.node.aggregator import Aggregator
from fedledger.node.evaluator import Evaluator
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.flat import Layout, unflatten
from fedledger.sdk.keys import Key
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.steps import Action
from fedledger.sdk.submit import Submitter
from fedledger.sdk.tensors import Tensors, decode_tensors, encode_tensors

__all__ = ["FullStackError", "Localnet", "run_fedledger_localnet"]

_DEADLINE_BLOCKS = 40  # a round closes early once every selected trainer committed; this only bounds dropouts
_STAGE_BLOCKS = 12  # a SecAgg stage advances early once everyone posted; this only bounds silent members
_ROUND_TIMEOUT_S = 300.0
_PORT_BLOCK = 40  # base + 10·i + k for 4 validators


class FullStackError(FedLedgerError, RuntimeError):
    """The localnet could not run a round (it stalled, or a service refused to go on); the message says where."""

    error_code = "FULL_STACK"


class _CountingStore(ContentStore):
    """A content store that counts the bytes one participant uploads (MB per client per round)."""

    def __init__(self, inner: ContentStore) -> None:
        self.inner = inner
        self.uploaded = 0

    def put(self, data: bytes) -> str:
        self.uploaded += len(data)
        return self.inner.put(data)

    def get(self, cid: str, sha256_hex: str) -> bytes:
        return self.inner.get(cid, sha256_hex)

    def has(self, cid: str) -> bool:
        return self.inner.has(cid)

    def pin(self, cid: str) -> None:
        self.inner.pin(cid)

    def describe(self) -> str:
        return f"counting({self.inner.describe()})"


class Localnet:
    """A localnet for experiments: attach to a running one at `home`, or start (and later stop) a fresh one."""

    def __init__(self, home: Path | None = None, store: str = "kubo", validators: int = 4,
                 log: Callable[[str], None] = lambda _line: None) -> None:
        self.requested = home
        self.store_kind = store
        self.validators = validators
        self.log = log
        self.started = False
        self._tmp: Path | None = None
        self.home = Path()
        self.rpc: CometRPC | None = None
        self.chain_id = ""
        self.store: ContentStore | None = None

    def __enter__(self) -> Localnet:
        from fedledger.localnet import manager
        from fedledger.localnet.ports import find_free_base_port

        if self.requested is not None and manager.is_running(self.requested):
            self.home = self.requested
            self.log(f"using the running localnet at {self.home}")
        else:
            if self.requested is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="fedledger-experiment-"))
            self.home = self.requested or (self._tmp or Path()) / "net"
            self.log(f"starting a {self.validators}-validator localnet ({self.store_kind} store) at {self.home}")
            self.started = True
            try:
                manager.up(self.home, validators=self.validators, store=self.store_kind,  # type: ignore[arg-type]
                           block_time_ms=250, base_port=find_free_base_port(_PORT_BLOCK), timeout=120, log=self.log)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        self.rpc = CometRPC(manager.rpc_url(self.home, 0))
        self.chain_id = str(self.rpc.status()["node_info"]["network"])
        self.store = open_store(manager.store_spec(self.home) or "")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        from fedledger.localnet import manager

        if self.rpc is not None:
            self.rpc.close()
            self.rpc = None
        if self.started:
            manager.down(self.home)
            self.started = False
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def parts(self) -> tuple[CometRPC, ContentStore]:
        """The RPC client and the content store; FullStackError outside the `with` block."""
        if self.rpc is None or self.store is None:
            raise FullStackError("the localnet is not running (use Localnet as a context manager)")
        return self.rpc, self.store


class _FullRun:
    """One FedLedger run on the localnet: its own task, keys and services, stepped round by round."""

    def __init__(self, ctx: RunContext, init: Tensors, net: Localnet) -> None:
        self.ctx = ctx
        self.net = net
        rpc, self.store = net.parts()
        self.view = ChainView(rpc)
        # A fresh task and fresh keys per run: reputation and budgets never leak from one run to the next.
        self.task_id = f"exp-s{ctx.seed}-{ctx.attack.replace('_', '-')}-{secrets.token_hex(4)}"[:64]
        agg_key, ev_key = Key.generate(f"{self.task_id}-agg"), Key.generate(f"{self.task_id}-eval")
        trainer_keys = [Key.generate(f"{self.task_id}-t{i}") for i in range(ctx.cfg.clients)]
        self.subs = [Submitter(rpc, k, net.chain_id) for k in trainer_keys]
        self.stores = [_CountingStore(self.store) for _ in trainer_keys]
        self.by_hex = {k.public_hex: i for i, k in enumerate(trainer_keys)}
        agg, ev = Submitter(rpc, agg_key, net.chain_id), Submitter(rpc, ev_key, net.chain_id)
        self.agg_sub = agg
        admits = [(agg, "aggregator"), (ev, "evaluator"), *[(s, "trainer") for s in self.subs]]
        pending = [(s, s.broadcast("admit", {"credential": dev_credential(net.home, s.key, role,
                                                                          tasks=[self.task_id])}))
                   for s, role in admits]
        for sub, tx in pending:
            sub.wait(tx)
        initial = encode_tensors(init)
        cid = self.store.put(initial)
        self.store.pin(cid)
        ref: PayloadRef = {"cid": cid, "sha256": hashlib.sha256(initial).hexdigest(), "size": len(initial)}
        agg.send("create_task", task_body(ctx, agg_key.public_hex, ref, deadline_blocks=_DEADLINE_BLOCKS,
                                          stage_blocks=_STAGE_BLOCKS, task_id=self.task_id))
        self.aggregator = Aggregator(agg, self.store, self.task_id, auto_open=False)
        # The evaluator gets its canary set only: the attack's trigger is never handed to a defense.
        self.evaluator = Evaluator(ev, self.store, self.task_id, ctx.data.canary, None)
        self.available = [True] * ctx.cfg.clients
        self.models: dict[int, Tensors] = {0: init}
        self.receipts: dict[str, ContributionReceipt] = {}  # trainer -> its latest receipt (ε after it)
        self.figures = RoundFigures()  # commit_s: commit_contribution broadcast to its block

    def model(self, version: int) -> Tensors:
        """A version's model, fetched from the store once and hash-checked."""
        if version not in self.models:
            rec = self.view.version(self.task_id, version)
            self.models[version] = decode_tensors(self.store.get(rec["cid"], rec["sha256"]))
        return self.models[version]

    def trusted(self) -> Tensors:
        """The task's last promoted version (what the next round trains from, and what is reported)."""
        return self.model(int(self.view.get(f"/lifecycle/{self.task_id}")["last_good"]))

    def declare_availability(self, number: int) -> None:
        online = set(online_clients(self.ctx, number))
        changes = [i for i in range(self.ctx.cfg.clients) if (i in online) != self.available[i]]
        pending = [(self.subs[i], self.subs[i].broadcast("declare_availability",
                                                         {"task_id": self.task_id, "available": i in online}))
                   for i in changes]
        for sub, tx in pending:
            sub.wait(tx)
        for i in changes:
            self.available[i] = i in online

    def round(self, number: int) -> bool:
        """One round through the real services; True if a version was proposed."""
        ids = {"task_id": self.task_id, "round": number}
        self.declare_availability(number)
        self.agg_sub.send("open_round", ids)
        rnd = self.view.round(self.task_id, number)
        selected: list[str] = rnd["selected"]
        clients = [self.by_hex[k] for k in selected]
        dropped = dropped_positions(self.ctx, clients, number)
        base = self.model(int(rnd["base_version"]))
        if len(clients) < 2:
            # As in the fast mode: one input cannot be hidden or robustly combined, so nobody sends
            # one; the aggregator closes the round at its deadline and fails it, the model stays.
            clients = []
        updates, layout = round_updates(self.ctx, base, clients, number) if clients else ([], ())
        before = [s.uploaded for s in self.stores]
        participants: dict[int, SecureParticipant] = {}
        if "secagg" in rnd:
            for pos, i in enumerate(clients):
                participants[pos] = SecureParticipant(self.subs[i], self.stores[i], self.task_id,
                                                      _fixed_update(updates[pos], layout))
        else:
            for pos, i in enumerate(clients):
                if pos not in dropped:
                    u = updates[pos]
                    self._receipt(i, contribute_update(
                        self.subs[i], self.stores[i], self.task_id, number, int(rnd["base_version"]),
                        encode_tensors(unflatten(u.vector, layout)), u.num_examples, u.mechanism or {}))
        trail: list[str] = []
        deadline = time.monotonic() + _ROUND_TIMEOUT_S
        while True:
            rnd = self.view.round(self.task_id, number)
            if rnd["status"] == "failed" or (rnd["status"] == "aggregated" and self._decided(rnd)):
                break
            if time.monotonic() > deadline:
                raise FullStackError(f"round {number} of {self.task_id} did not finish in {_ROUND_TIMEOUT_S:.0f}s; "
                                     f"last steps: {trail[-12:]}")
            stage = rnd.get("secagg", {}).get("stage")
            for pos, p in participants.items():
                if pos in dropped and stage not in ("keys", "shares"):
                    continue  # shared its secrets, then vanished before its masked input
                step = p.step()
                trail.append(f"trainer {clients[pos]}: {step}")
                if step.action is Action.COMMITTED_INPUT:
                    self._receipt(clients[pos], p.receipts[-1])
            started = time.perf_counter()
            step = self.aggregator.step()
            if step.action is Action.PROPOSED_VERSION:
                self.figures.aggregation_s.append(time.perf_counter() - started)
            trail += [f"aggregator: {step}", f"evaluator: {self.evaluator.step()}"]
            time.sleep(0.05)
        self.figures.bytes.extend(self.stores[i].uploaded - before[i] for pos, i in enumerate(clients)
                                  if pos not in dropped)
        accepted: set[int] = set()
        if rnd["status"] == "aggregated" and rnd["version"] is not None:
            accepted = {self.by_hex[w] for w in self.view.version(self.task_id, rnd["version"])["contributors"]}
        self.figures.count(self.ctx.byzantine, clients, accepted)
        return bool(rnd["status"] == "aggregated")

    def _decided(self, rnd: RoundRecord) -> bool:
        version = rnd["version"]
        return version is not None and self.view.version(self.task_id, version)["status"] != "proposed"

    def _receipt(self, client: int, receipt: ContributionReceipt) -> None:
        self.receipts[self.subs[client].key.public_hex] = receipt
        self.figures.commit_s.append(receipt.latency_s)

    def epsilon(self) -> float:
        """The largest ε any trainer has spent on this task, as the chain reported it."""
        return max((r.epsilon for r in self.receipts.values() if np.isfinite(r.epsilon)), default=0.0)

    def quarantined(self) -> int:
        versions = self.view.get(f"/versions/{self.task_id}")
        return sum(1 for v in versions if v.get("status") == "quarantined")

    def promoted_versions(self) -> int:
        versions = self.view.get(f"/versions/{self.task_id}")
        return sum(1 for v in versions if v.get("status") == "promoted")

    def reputation(self) -> tuple[float, float]:
        # Not followed on the localnet (it would cost a query per trainer and round).
        return float("nan"), float("nan")


def _fixed_update(update: ClientUpdate, layout: Layout) -> Callable[[TaskRecord, RoundRecord, Tensors], Update]:
    """The SecureParticipant callback handing over a client's update, trained when the round opened."""
    delta = unflatten(update.vector, layout)

    def make(_task: TaskRecord, _rnd: RoundRecord, _base: Tensors) -> Update:
        return Update(delta, update.num_examples, dict(update.mechanism or {}))

    return make


def run_fedledger_localnet(ctx: RunContext, init: Tensors, result: RunResult,
                           evaluate_round: Callable[[Tensors], None], net: Localnet) -> Tensors:
    """Run every round of ctx on the localnet; fills the result's chain figures and returns the last promoted model.

    commit_ms is here the real chain commit latency: commit_contribution broadcast to its block.
    """
    if ctx.cfg.screen or ctx.cfg.dp_mode == "distributed" or ctx.method != "fedledger":
        # The input screen and the harness's distributed-DP clients run in the fast mode only so far:
        # the real SecureParticipant and Aggregator do not post or check screen claims yet.
        raise FullStackError("the localnet mode runs FedLedger with dp_mode = \"dpsgd\", screen = false; the input "
                             "screen and distributed-DP clients run in the fast mode only for now")
    if ctx.attack == "sybil":
        # The development genesis has one organization with a large cap; the Sybil experiment needs
        # the attackers in an organization of their own, capped at their number (the fast mode's chain).
        raise FullStackError("the sybil attack needs an attackers' organization with its own enrollment cap, which "
                             "the localnet's development genesis does not have; run it in the fast mode")
    return drive_rounds(_FullRun(ctx, init, net), ctx, result, evaluate_round)
