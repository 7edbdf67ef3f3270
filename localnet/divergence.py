"""Detect state divergence directly: compare every node's OWN committed state root and records.

Block headers are shared by construction (a node that disagrees cannot append the others' next
block), so comparing header app hashes only shows a diverged node indirectly, when it stalls. This
check asks each node's application itself:

* ABCI Info through the node's RPC (`abci_info`): the app's last committed height and app hash;
* a few state queries with proofs (`abci_query … prove=true`), answered by that app from its
  own store, each record carrying its value and a Merkle proof.

Samples are aligned at a common height: an app answers queries only at its latest height, so the
nodes are sampled in rounds until one height is sampled on every reachable node. A node that lags
(or has stalled after diverging) is compared at its own height, the others' roots at that height
being read from their block stores (header H+1 carries the root after block H, and a node only
stores a header whose app hash matches what its own app computed).

Three kinds of finding: a node whose root at the common height differs from the majority's; a
node whose records do not verify against its own root (its store was altered behind its Merkle
tree); a node whose record at a key differs from the majority's value. A node that does not answer
is reported as unreachable, never as divergent.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from fedledger.abci_app.errors import FedLedgerError
from fedledger.abci_app.query_proofs import PROOF_OP_TYPE, verify_answer
from fedledger.abci_app.store.proof import ProofError, RecordProof
from fedledger.sdk.rpc import AbciQueryResult, CometRPC

__all__ = [
    "DEFAULT_QUERIES",
    "CometProbe",
    "Finding",
    "NodeProbe",
    "StateReport",
    "check_state",
    "majority",
]

#: Queries every node answers from its own store by default: parameter records and listings that
#: most tx kinds touch. Each answer's proof ops name every record read, so these compare many keys.
DEFAULT_QUERIES: tuple[tuple[str, bytes], ...] = (
    ("/proposals", b""),
    ("/reputation-params", b""),
    ("/zk-params", b""),
    ("/inference-params", b""),
    ("/attestation-params", b""),
)


class NodeProbe(Protocol):
    """What the check reads from one node; every method raises a FedLedgerError if the node does not answer."""

    def info(self) -> tuple[int, bytes]:
        """ABCI Info of the node's app: (last_block_height, last_block_app_hash)."""
        ...

    def header_app_hash(self, height: int) -> bytes:
        """The app hash in the header at `height` of the node's own block store (the root after height-1)."""
        ...

    def query(self, path: str, data: bytes) -> AbciQueryResult:
        """`abci_query` at the latest height, with proofs."""
        ...


class CometProbe:
    """NodeProbe over a CometBFT RPC (short timeouts: a dead node must not hold the check up)."""

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.rpc = CometRPC(url, timeout=timeout)

    def info(self) -> tuple[int, bytes]:
        """ABCI Info, asked through the RPC's `abci_info` (the app answers, not CometBFT's own state)."""
        res = self.rpc.call("abci_info")["response"]
        return int(res.get("last_block_height") or 0), base64.b64decode(res.get("last_block_app_hash") or "")

    def header_app_hash(self, height: int) -> bytes:
        """App hash of the node's stored header at `height`."""
        return bytes.fromhex(self.rpc.call("header", height=str(height))["header"]["app_hash"])

    def query(self, path: str, data: bytes) -> AbciQueryResult:
        """A proved query at the latest height."""
        return self.rpc.abci_query(path, data, prove=True)

    def close(self) -> None:
        """Close the HTTP pool."""
        self.rpc.close()


@dataclass(frozen=True)
class Finding:
    """One disagreement: which node, at what height, about what (`app hash`, `key 0x…`, `query /…`)."""

    node: str
    height: int
    subject: str
    detail: str


@dataclass
class StateReport:
    """The outcome of one check."""

    height: int | None = None  # the common height the roots were compared at
    aligned: bool = False  # records were compared on every reachable node at that same height
    roots: dict[str, str] = field(default_factory=dict)  # node -> hex root at `height`
    majority_root: str | None = None
    divergent: list[str] = field(default_factory=list)  # nodes with at least one finding, sorted
    findings: list[Finding] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # node -> why
    keys_compared: int = 0
    elapsed_s: float = 0.0

    @property
    def agree(self) -> bool:
        """Every reachable node agrees (there may still be unreachable ones)."""
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (findings as objects)."""
        doc = asdict(self)
        doc["agree"] = self.agree
        return doc

    def summary(self) -> str:
        """Human-readable lines."""
        lines = []
        if self.height is not None:
            how = "roots and records" if self.aligned else "roots (records not aligned at one height)"
            lines.append(f"compared {how} of {len(self.roots)} node(s) at height {self.height}; "
                         f"{self.keys_compared} key(s) compared; {self.elapsed_s:.2f} s")
        for node, root in sorted(self.roots.items()):
            mark = "" if node not in self.divergent else "  <- DIVERGES"
            lines.append(f"  {node}: {root}{mark}")
        for node, why in sorted(self.unreachable.items()):
            lines.append(f"  {node}: UNREACHABLE ({why})")
        for f in self.findings:
            lines.append(f"  {f.node} @ height {f.height}, {f.subject}: {f.detail}")
        if self.agree and self.roots:
            lines.append("all reachable nodes agree")
        return "\n".join(lines)


def majority(votes: Mapping[str, object]) -> object | None:
    """The value held by strictly more than half of `votes` (node -> value), or None when there is none."""
    if not votes:
        return None
    value, count = Counter(votes.values()).most_common(1)[0]
    return value if 2 * count > len(votes) else None


@dataclass(frozen=True)
class _Sample:
    height: int
    root: bytes
    answers: tuple[AbciQueryResult, ...]


def _sample(probe: NodeProbe, queries: Sequence[tuple[str, bytes]]) -> _Sample | None:
    """Info, the queries, Info again: a sample when all of it came from one height, else None."""
    h1, root = probe.info()
    answers = tuple(probe.query(path, data) for path, data in queries)
    h2, root2 = probe.info()
    if h1 != h2 or root != root2 or any(a.height != h1 for a in answers):
        return None  # a block was committed meanwhile
    return _Sample(h1, root, answers)


def _records(answer: AbciQueryResult) -> dict[bytes, bytes | None] | str:
    """Key -> value of every record an answer carries, or why its proof ops are malformed."""
    out: dict[bytes, bytes | None] = {}
    for op_type, _key, data in answer.proof_ops:
        if op_type != PROOF_OP_TYPE:
            return f"proof op of type {op_type!r}"
        try:
            record = RecordProof.decode(data)
        except ProofError as exc:
            return str(exc)
        out[record.key] = record.value
    return out


def check_state(probes: Mapping[str, NodeProbe], queries: Sequence[tuple[str, bytes]] = DEFAULT_QUERIES,
                *, rounds: int = 12, pause_s: float = 0.05,
                clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> StateReport:
    """Compare the nodes' own committed states; see the module docstring. Never raises for a bad node."""
    start = clock()
    report = StateReport()
    samples: dict[str, dict[int, _Sample]] = {name: {} for name in probes}
    common: int | None = None
    for _ in range(max(1, rounds)):
        for name, probe in probes.items():
            if name in report.unreachable:
                continue
            try:
                s = _sample(probe, queries)
            except FedLedgerError as exc:
                report.unreachable[name] = str(exc)
                continue
            if s is not None:
                samples[name][s.height] = s
        live = [n for n in probes if n not in report.unreachable]
        if not live:
            break
        shared = set.intersection(*(set(samples[n]) for n in live))
        if shared:
            common = max(shared)
            break
        sleep(pause_s)
    live = sorted(n for n in probes if n not in report.unreachable and samples[n])
    for n in probes:
        if n not in report.unreachable and not samples[n]:
            report.unreachable[n] = "its height moved during every sample (no consistent answer)"
    if not live:
        report.elapsed_s = clock() - start
        return report

    # The roots, at the common sampled height or else at the lowest height any live node is at.
    height = common if common is not None else min(max(samples[n]) for n in live)
    roots: dict[str, bytes] = {}
    for n in live:
        if height in samples[n]:
            roots[n] = samples[n][height].root
            continue
        try:
            roots[n] = probes[n].header_app_hash(height + 1)
        except FedLedgerError as exc:
            report.unreachable[n] = f"cannot read its header {height + 1}: {exc}"
    report.height = height
    report.roots = {n: r.hex() for n, r in roots.items()}
    top = majority(roots)
    winner = top if isinstance(top, bytes) else None
    report.majority_root = winner.hex() if winner is not None else None
    for n, root in sorted(roots.items()):
        if winner is None:
            report.findings.append(Finding(n, height, "app hash", f"no majority among {len(roots)} nodes' roots; "
                                           f"this node has {root.hex()}"))
        elif root != winner:
            report.findings.append(Finding(n, height, "app hash",
                                           f"{root.hex()} differs from the majority's {winner.hex()}"))

    # Each node's records against its own root, in every sample taken (altered stores show here).
    for n in live:
        for h, s in sorted(samples[n].items()):
            for (path, data), answer in zip(queries, s.answers, strict=True):
                try:
                    verify_answer(path, data, answer.value, answer.proof_ops, s.root, key=answer.key,
                                  code=answer.code, log=answer.log, height=answer.height)
                except (FedLedgerError, ValueError) as exc:
                    report.findings.append(Finding(n, h, f"query {path}", f"answer does not verify against "
                                                   f"the node's own root {s.root.hex()[:16]}…: {exc}"))

    # Record by record across nodes, when every one was sampled at the same height.
    if common is not None:
        report.aligned = True
        keys: set[bytes] = set()
        for qi, (path, _data) in enumerate(queries):
            per_node: dict[str, dict[bytes, bytes | None]] = {}
            for n in live:
                if n not in roots:
                    continue
                recs = _records(samples[n][common].answers[qi])
                if isinstance(recs, str):
                    report.findings.append(Finding(n, common, f"query {path}", f"malformed proof: {recs}"))
                    continue
                per_node[n] = recs
            for key in sorted(set().union(*per_node.values()) if per_node else set()):
                keys.add(key)
                votes = {n: _show(recs[key]) if key in recs else "not read" for n, recs in per_node.items()}
                best = majority(votes)
                for n, v in sorted(votes.items()):
                    if best is None or v != best:
                        report.findings.append(Finding(n, common, f"key 0x{key.hex()}",
                                                       f"value {v} vs majority {best or 'none (no majority)'}"))
        report.keys_compared = len(keys)
    report.divergent = sorted({f.node for f in report.findings})
    report.elapsed_s = clock() - start
    return report


def _show(v: bytes | None) -> str:
    """A record value as a short comparable string: absent, or its length and sha256 prefix."""
    if v is None:
        return "absent"
    return f"{len(v)} bytes sha256:{hashlib.sha256(v).hexdigest()[:16]}"
