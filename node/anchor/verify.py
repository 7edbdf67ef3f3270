"""Proving a model version's checkpoint is anchored: build the inclusion proof, check it against the live public chain.

`build_bundle` (needs a FedLedger node) finds the height at which the version became trusted,
the anchor record covering it, rebuilds that batch's checkpoints from the node, checks they hash
to the recorded root, and returns a self-contained `ProofBundle` (JSON-serialisable).

`verify_bundle` (needs only the public chain's RPC) checks, fetching everything live:
1. the checkpoint names the version;
2. the Merkle proof leads from the checkpoint's leaf to the recorded root, at the index the
   height gives;
3. the RPC serves the public chain the anchor names;
4. the anchor tx's receipt exists with status 1, in the recorded block, still canonical, with
   enough confirmations;
5. that receipt holds an Anchored event from the trusted contract carrying this permissioned
   chain's tag, the same root and the same height range.
The verdict is positive only when every check passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.binary_merkle import MerkleError, MerkleProof, MerkleTree, root_from_proof
from fedledger.abci_app.modules.federation.records import VersionRecord
from fedledger.node.anchor.checkpoints import Checkpoint, RPCCheckpoints, leaves
from fedledger.node.anchor.contract import chain_tag, decode_anchored
from fedledger.node.anchor.errors import AnchorError
from fedledger.node.anchor.eth import EthClient

__all__ = ["BUNDLE_FORMAT", "Check", "ProofBundle", "Verdict", "build_bundle", "trusted_height", "verify_bundle"]

BUNDLE_FORMAT = "fedledger-anchor-proof-v1"
_ANCHOR_FIELDS = ("seq", "public_chain_id", "contract", "tx_hash", "block_number", "block_hash", "root", "from_height",
                  "to_height")


@dataclass(frozen=True)
class ProofBundle:
    """Everything needed to check one version's checkpoint against the public chain."""

    task_id: str
    version: int
    checkpoint: Checkpoint
    proof: MerkleProof
    # The permissioned chain's anchor record (the _ANCHOR_FIELDS), as read from an untrusted bundle
    # file: free-form JSON until verify_bundle has checked every field against the public chain.
    anchor: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (`fedledger anchor proof --out FILE`)."""
        return {"format": BUNDLE_FORMAT, "task_id": self.task_id, "version": self.version,
                "checkpoint": self.checkpoint.to_json(), "proof": self.proof.to_json(),
                "anchor": {k: self.anchor[k] for k in _ANCHOR_FIELDS}}

    @staticmethod
    def from_json(value: Any) -> ProofBundle:
        """Parse to_json's form; AnchorError says what is malformed."""
        if not isinstance(value, dict) or value.get("format") != BUNDLE_FORMAT:
            raise AnchorError(f"not an anchor proof bundle (expected format {BUNDLE_FORMAT!r})")
        anchor = value.get("anchor")
        if not isinstance(anchor, dict) or set(anchor) != set(_ANCHOR_FIELDS):
            raise AnchorError(f"the bundle's anchor must have exactly {list(_ANCHOR_FIELDS)}")
        if not isinstance(value.get("task_id"), str) or not isinstance(value.get("version"), int):
            raise AnchorError("the bundle needs a task_id string and a version number")
        try:
            proof = MerkleProof.from_json(value.get("proof"))
        except MerkleError as exc:
            raise AnchorError(f"the bundle's proof is malformed: {exc}") from exc
        return ProofBundle(value["task_id"], value["version"], Checkpoint.from_json(value.get("checkpoint")), proof,
                           dict(anchor))


@dataclass(frozen=True)
class Check:
    """One check of a verification and what it found."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of verify_bundle: positive only if every check passed."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"verified": self.ok, "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}


def trusted_height(record: VersionRecord) -> int:
    """The height at which a version record became trusted; AnchorError for versions never trusted."""
    status, version = record.get("status"), int(record["version"])
    if version == 0:
        return int(record["height"])
    if status in ("promoted", "rolled_back") and record.get("decided_height"):
        return int(record["decided_height"])  # rolled_back versions were promoted first
    raise AnchorError(f"version {version} of {record.get('task_id')} is {status}: only promoted versions (and "
                      "version 0) are checkpointed")


def build_bundle(rpc: Any, task_id: str, version: int) -> ProofBundle:
    """The proof bundle of a version's checkpoint, built from a FedLedger node (AnchorError if there is none)."""
    from fedledger.sdk.chainview import ChainView, NotFoundOnChain

    view = ChainView(rpc)
    try:
        record = view.version(task_id, version)
    except NotFoundOnChain as exc:
        raise AnchorError(f"version {version} of task {task_id!r} does not exist") from exc
    height = trusted_height(record)
    try:
        anchor = view.get(f"/anchor-at/{height}")
    except NotFoundOnChain as exc:
        raise AnchorError(f"version {version} of {task_id} became trusted at height {height}, which is not anchored "
                          f"yet: {exc}") from exc
    source = RPCCheckpoints(rpc)
    checkpoints = source.checkpoints(int(anchor["from_height"]), int(anchor["to_height"]))
    tree = MerkleTree(leaves(checkpoints))
    if "0x" + tree.root.hex() != anchor["root"]:
        raise AnchorError(f"the checkpoints of heights {anchor['from_height']}..{anchor['to_height']} read from this "
                          f"node hash to 0x{tree.root.hex()}, not to the recorded root {anchor['root']}: this node's "
                          "history differs from what was anchored")
    index = height - int(anchor["from_height"])
    checkpoint = checkpoints[index]
    if not checkpoint.names(task_id, version):
        raise AnchorError(f"the checkpoint of height {height} does not list version {version} of {task_id}")
    return ProofBundle(task_id, version, checkpoint, tree.proof(index), {k: anchor[k] for k in _ANCHOR_FIELDS})


def _check_proof(bundle: ProofBundle) -> Check:
    anchor = bundle.anchor
    index = bundle.checkpoint.height - int(anchor["from_height"])
    count = int(anchor["to_height"]) - int(anchor["from_height"]) + 1
    if (bundle.proof.index, bundle.proof.count) != (index, count):
        return Check("inclusion proof", False, f"the proof is for leaf {bundle.proof.index} of {bundle.proof.count}, "
                                               f"but height {bundle.checkpoint.height} is leaf {index} of {count}")
    try:
        root = "0x" + root_from_proof(bundle.checkpoint.leaf_bytes(), bundle.proof).hex()
    except MerkleError as exc:
        return Check("inclusion proof", False, f"malformed proof: {exc}")
    if root != anchor["root"]:
        return Check("inclusion proof", False, f"the proof leads to {root}, not to the anchored root {anchor['root']}")
    return Check("inclusion proof", True, f"leaf {index} of {count}, {len(bundle.proof.siblings)} siblings → root "
                                          f"{root}")


def verify_bundle(bundle: ProofBundle, eth: EthClient, *, contract: str | None = None,
                  min_confirmations: int = 1) -> Verdict:
    """Check a bundle against the live public chain (see the module docstring). `contract`: the trusted address."""
    anchor, cp = bundle.anchor, bundle.checkpoint
    checks = [Check("checkpoint", cp.names(bundle.task_id, bundle.version),
                    f"height {cp.height} of chain {cp.chain_id}, app hash {cp.app_hash[:16]}…, "
                    + ("lists" if cp.names(bundle.task_id, bundle.version) else "does NOT list")
                    + f" {bundle.task_id} v{bundle.version}"),
              _check_proof(bundle)]
    chain = eth.chain_id()
    checks.append(Check("public chain", chain == int(anchor["public_chain_id"]),
                        f"the RPC serves chain id {chain}; the anchor is on {anchor['public_chain_id']}"))
    receipt = eth.receipt(str(anchor["tx_hash"]))
    if receipt is None:
        checks.append(Check("receipt", False, f"tx {anchor['tx_hash']} is not mined on chain {chain}"))
        return Verdict(tuple(checks))
    depth = eth.block_number() - receipt.block_number + 1
    canonical = eth.block_hash(receipt.block_number) == receipt.block_hash
    receipt_ok = (receipt.status == 1 and receipt.block_number == int(anchor["block_number"])
                  and receipt.block_hash.lower() == str(anchor["block_hash"]) and canonical
                  and depth >= min_confirmations)
    checks.append(Check("receipt", receipt_ok,
                        f"tx {receipt.tx_hash} status {receipt.status} in block {receipt.block_number} "
                        f"({'canonical' if canonical else 'NOT canonical'}, recorded {anchor['block_number']}), "
                        f"{depth} confirmations (need {min_confirmations})"))
    trusted = (contract or str(anchor["contract"])).lower()
    want = (chain_tag(cp.chain_id), bytes.fromhex(str(anchor["root"])[2:]), int(anchor["from_height"]),
            int(anchor["to_height"]))
    found = [ev for ev in (decode_anchored(x) for x in receipt.logs) if ev is not None]
    match = [ev for ev in found if ev.contract.lower() == trusted
             and (ev.chain_tag, ev.root, ev.from_height, ev.to_height) == want]
    checks.append(Check(
        "Anchored event", bool(match) and str(anchor["contract"]).lower() == trusted,
        f"contract {trusted} emitted root {anchor['root']} for {cp.chain_id} heights "
        f"{anchor['from_height']}..{anchor['to_height']}" if match else
        f"no Anchored event from {trusted} with root {anchor['root']} and heights "
        f"{anchor['from_height']}..{anchor['to_height']} in the receipt ({len(found)} Anchored events)"))
    return Verdict(tuple(checks))
