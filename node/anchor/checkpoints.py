"""Checkpoints of the permissioned chain: what one anchored leaf says, its canonical bytes, and reading them over RPC.

A checkpoint is one committed height `h` of the FedLedger chain:

* `chain_id`: the permissioned chain's id (so a leaf of one consortium chain can never prove
  anything about another);
* `app_hash`: the state root after executing block h, as the header of block h+1 carries it
  (the header the validators sign, and the one `query --verify` checks proofs against);
* `versions`: the model versions that became trusted at h, sorted by (task, version): version 0
  of a task created at h (status `initial`, trusted by construction) and every version promoted
  at h by its evaluators' quorum (status `promoted`), each with its CID and sha256.

Leaf bytes are the canonical JSON (`abci_app/canonical.py`: sorted keys, no whitespace, ASCII,
integers only) of `{"scheme": "fedledger-checkpoint-v1", "chain_id", "height", "app_hash",
"versions": [{"task_id", "version", "cid", "sha256", "status"}]}`; merkle.py hashes them as
keccak256(0x00 || bytes). The versions come from the block's `fl` events (`create_task`,
`decide_version` with status promoted, in tx results and end-block events), their CID and
sha256 from the version records, which never change once written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.node.anchor.errors import AnchorError

__all__ = ["SCHEME", "Checkpoint", "CheckpointError", "CheckpointSource", "CheckpointVersion", "RPCCheckpoints",
           "leaves", "trusted_versions"]

SCHEME = "fedledger-checkpoint-v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEADERS_PER_CALL = 20  # CometBFT's /blockchain returns at most 20 block metas per call


class CheckpointError(AnchorError):
    """Checkpoints cannot be read (height not committed yet) or a checkpoint is malformed."""

    error_code = "CHECKPOINT"


@dataclass(frozen=True)
class CheckpointVersion:
    """A model version that became trusted at a checkpoint's height."""

    task_id: str
    version: int
    cid: str
    sha256: str
    status: str  # "initial" (version 0, at task creation) or "promoted"

    def to_json(self) -> dict[str, Any]:
        """The version's part of the leaf."""
        return {"task_id": self.task_id, "version": self.version, "cid": self.cid, "sha256": self.sha256,
                "status": self.status}


@dataclass(frozen=True)
class Checkpoint:
    """One committed height: chain id, app hash after the block, and the versions trusted from it."""

    chain_id: str
    height: int
    app_hash: str  # 64 lower-case hex digits
    versions: tuple[CheckpointVersion, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The leaf as a JSON object (see the module docstring)."""
        return {"scheme": SCHEME, "chain_id": self.chain_id, "height": self.height, "app_hash": self.app_hash,
                "versions": [v.to_json() for v in self.versions]}

    def leaf_bytes(self) -> bytes:
        """The canonical bytes this checkpoint contributes to the Merkle tree."""
        return canonical_bytes(self.to_json())

    def names(self, task_id: str, version: int) -> bool:
        """Whether this checkpoint lists `version` of `task_id`."""
        return any(v.task_id == task_id and v.version == version for v in self.versions)

    @staticmethod
    def from_json(value: Any) -> Checkpoint:
        """Parse to_json's form strictly; CheckpointError says what is wrong."""
        if not isinstance(value, Mapping) or set(value) != {"scheme", "chain_id", "height", "app_hash", "versions"}:
            raise CheckpointError("a checkpoint is an object with exactly scheme, chain_id, height, app_hash, versions")
        if value["scheme"] != SCHEME:
            raise CheckpointError(f"unknown checkpoint scheme {value['scheme']!r}; this build reads {SCHEME!r}")
        height, app_hash, chain_id = value["height"], value["app_hash"], value["chain_id"]
        if not isinstance(height, int) or isinstance(height, bool) or height < 1:
            raise CheckpointError(f"checkpoint height must be a positive integer, got {height!r}")
        if not isinstance(app_hash, str) or not _HEX64.match(app_hash):
            raise CheckpointError("checkpoint app_hash must be 64 lower-case hex digits")
        if not isinstance(chain_id, str) or not chain_id:
            raise CheckpointError("checkpoint chain_id must be a non-empty string")
        versions = value["versions"]
        if not isinstance(versions, list):
            raise CheckpointError("checkpoint versions must be a list")
        parsed = []
        for v in versions:
            if not isinstance(v, Mapping) or set(v) != {"task_id", "version", "cid", "sha256", "status"}:
                raise CheckpointError("a checkpoint version has exactly task_id, version, cid, sha256, status")
            if not all(isinstance(v[k], str) for k in ("task_id", "cid", "sha256", "status")) \
                    or not isinstance(v["version"], int) or isinstance(v["version"], bool):
                raise CheckpointError("checkpoint version fields have the wrong types")
            parsed.append(CheckpointVersion(v["task_id"], v["version"], v["cid"], v["sha256"], v["status"]))
        return Checkpoint(chain_id, height, app_hash, tuple(parsed))


class CheckpointSource(Protocol):
    """Where checkpoints come from (the chain over RPC; a fake in unit tests)."""

    chain_id: str

    def latest_checkpoint_height(self) -> int:
        """The highest height whose checkpoint can be read now (its successor's header exists)."""
        ...

    def checkpoints(self, from_height: int, to_height: int) -> list[Checkpoint]:
        """The checkpoints of heights from_height..to_height, in order."""
        ...


def trusted_versions(events: Iterable[Mapping[str, Any]]) -> list[tuple[str, int, str]]:
    """(task, version, status) of every version an ABCI event list makes trusted, in event order.

    `create_task` makes version 0 trusted (`initial`); `decide_version` with status `promoted`
    makes its version trusted. Events are CometBFT JSON: {"type", "attributes": [{"key", "value"}]}.
    """
    out: list[tuple[str, int, str]] = []
    for ev in events:
        if ev.get("type") != "fl":
            continue
        attrs = {str(a.get("key")): str(a.get("value")) for a in ev.get("attributes") or []}
        action, task = attrs.get("action"), attrs.get("task")
        if task is None:
            continue
        if action == "create_task":
            out.append((task, 0, "initial"))
        elif action == "decide_version" and attrs.get("status") == "promoted" and attrs.get("version", "").isdigit():
            out.append((task, int(attrs["version"]), "promoted"))
    return out


class RPCCheckpoints:
    """Checkpoints read from a FedLedger node: headers for app hashes, block results for events, records for CIDs."""

    def __init__(self, rpc: Any, chain_id: str | None = None) -> None:
        from fedledger.sdk.chainview import ChainView

        self.rpc = rpc
        self.view = ChainView(rpc)
        self.chain_id = chain_id or str(rpc.status()["node_info"]["network"])
        self._versions: dict[tuple[str, int], tuple[str, str]] = {}

    def latest_checkpoint_height(self) -> int:
        """Latest committed height minus one: checkpoint h needs the header of block h+1."""
        return int(self.rpc.height()) - 1

    def _app_hashes(self, from_height: int, to_height: int) -> dict[int, str]:
        """Header app hashes of heights from_height..to_height, by height."""
        out: dict[int, str] = {}
        lo = from_height
        while lo <= to_height:
            hi = min(to_height, lo + _HEADERS_PER_CALL - 1)
            res = self.rpc.call("blockchain", minHeight=str(lo), maxHeight=str(hi))
            for meta in res.get("block_metas") or []:
                header = meta["header"]
                out[int(header["height"])] = str(header["app_hash"]).lower()
            lo = hi + 1
        missing = [h for h in range(from_height, to_height + 1) if h not in out]
        if missing:
            raise CheckpointError(f"the node returned no header for heights {missing[:5]}")
        return out

    def _version_ref(self, task_id: str, version: int) -> tuple[str, str]:
        key = (task_id, version)
        if key not in self._versions:
            rec = self.view.version(task_id, version)
            self._versions[key] = (str(rec["cid"]), str(rec["sha256"]))
        return self._versions[key]

    def _events(self, height: int) -> list[Mapping[str, Any]]:
        res = self.rpc.call("block_results", height=str(height))
        events: list[Mapping[str, Any]] = []
        for tx in res.get("txs_results") or []:
            if int(tx.get("code", 0)) == 0:
                events += tx.get("events") or []
        events += res.get("finalize_block_events") or []
        return events

    def checkpoints(self, from_height: int, to_height: int) -> list[Checkpoint]:
        """The checkpoints of heights from_height..to_height (CheckpointError if any is not readable yet)."""
        if from_height < 1 or to_height < from_height:
            raise CheckpointError(f"no checkpoints in the height range {from_height}..{to_height}")
        latest = self.latest_checkpoint_height()
        if to_height > latest:
            raise CheckpointError(f"height {to_height} has no checkpoint yet: the chain's checkpoints reach {latest} "
                                  "(a checkpoint needs the next block's header)")
        # The header of block h+1 carries the app hash after block h.
        hashes = self._app_hashes(from_height + 1, to_height + 1)
        out = []
        for h in range(from_height, to_height + 1):
            trusted = sorted(set(trusted_versions(self._events(h))))
            versions = tuple(CheckpointVersion(t, v, *self._version_ref(t, v), status)
                             for t, v, status in sorted(trusted, key=lambda x: (x[0], x[1])))
            out.append(Checkpoint(self.chain_id, h, hashes[h + 1], versions))
        return out


def leaves(checkpoints: Sequence[Checkpoint]) -> list[bytes]:
    """The leaf bytes of a batch, checking it is one contiguous run of heights of one chain."""
    for prev, cur in zip(checkpoints, checkpoints[1:], strict=False):
        if cur.height != prev.height + 1 or cur.chain_id != prev.chain_id:
            raise CheckpointError(f"checkpoints must be consecutive heights of one chain: {prev.height} "
                                  f"({prev.chain_id}) is followed by {cur.height} ({cur.chain_id})")
    return [c.leaf_bytes() for c in checkpoints]
