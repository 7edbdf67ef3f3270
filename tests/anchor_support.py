"""An in-memory Ethereum node and clock for the anchoring unit tests (the real geth runs in integration tests)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth_abi.abi import decode, encode
from eth_account import Account
from eth_hash.auto import keccak

from fedledger.node.anchor.checkpoints import Checkpoint, CheckpointVersion
from fedledger.node.anchor.config import AnchorConfig
from fedledger.node.anchor.contract import ANCHOR_SIGNATURE, anchored_topic, load_artifact
from fedledger.node.anchor.errors import PublicChainUnavailable
from fedledger.node.anchor.eth import EthLog, EthRPCError, Receipt

KEY = "0x" + "11" * 32
ADDRESS = str(Account.from_key(KEY).address)
OTHER_KEY = "0x" + "22" * 32
GWEI = 10**9
_ANCHOR_SELECTOR = keccak(ANCHOR_SIGNATURE.encode())[:4]


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


@dataclass
class PoolTx:
    """A pending tx as the fake node keeps it."""

    tx_hash: str
    sender: str
    nonce: int
    tip: int
    cap: int
    to: str | None
    data: bytes
    raw: bytes


@dataclass
class FakeTime:
    """A clock that only moves when slept on; each sleep may also run hooks (mine a block, restart a node)."""

    now: float = 0.0
    hooks: list[Callable[[], None]] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for hook in list(self.hooks):
            hook()


class FakeEth:
    """An EthClient with a tx pool, nonces, EIP-1559 replacement rules, mining on demand and outages."""

    url = "http://fake-eth"

    def __init__(self, chain_id: int = 1337, base_fee: int = GWEI, suggested_tip: int = 2 * GWEI,
                 min_tip: int = 0, balance: int = 10**21) -> None:
        self._chain_id = chain_id
        self._base_fee = base_fee
        self.suggested = suggested_tip
        self.min_tip = min_tip  # the miner ignores txs tipping less (geth's --miner.gasprice)
        self.balances: dict[str, int] = defaultdict(lambda: balance)
        self.codes: dict[str, bytes] = {}
        self.owners: dict[str, str] = {}
        self.height = 10
        self.pool: dict[str, PoolTx] = {}
        self.receipts: dict[str, Receipt] = {}
        self.nonces: dict[str, int] = defaultdict(int)
        self.down = False
        self.sent: list[str] = []  # every tx hash broadcast, accepted or not
        self.gas_estimate = 30_000
        self.estimate_error: str | None = None
        self.revert = False
        self.all_logs: list[tuple[int, EthLog]] = []
        self.mined_txs: list[tuple[int, PoolTx]] = []
        self.forks = 0  # reorgs so far: block hashes from a reorged height on differ from before
        self.fork_from = 1 << 62

    # -- node control -------------------------------------------------------------------------
    def _up(self) -> None:
        if self.down:
            raise PublicChainUnavailable(f"no Ethereum node answers at {self.url}")

    def block_hash_at(self, number: int) -> str:
        fork = self.forks if number >= self.fork_from else 0
        return "0x" + keccak(b"block%d/%d" % (number, fork)).hex()

    def reorg(self, number: int, reinclude: bool) -> None:
        """Replace blocks `number`.. by new ones: their txs go back to the pool (`reinclude`) or are lost."""
        self.forks += 1
        self.fork_from = number
        for tx_hash, receipt in list(self.receipts.items()):
            if receipt.block_number >= number:
                del self.receipts[tx_hash]
        self.all_logs = [(h, e) for h, e in self.all_logs if h < number]
        for tx in self.mined_txs[:]:
            if tx[0] >= number:
                self.mined_txs.remove(tx)
                self.nonces[tx[1].sender] -= 1
                if reinclude:
                    self.pool[tx[1].tx_hash] = tx[1]
        self.height = number - 1

    def mine(self) -> None:
        """One block: for each sender, the pending tx with its next nonce (the best tip) if it tips enough."""
        self.height += 1
        by_sender: dict[str, list[PoolTx]] = defaultdict(list)
        for tx in self.pool.values():
            by_sender[tx.sender].append(tx)
        for sender, txs in sorted(by_sender.items()):
            ready = [t for t in txs if t.nonce == self.nonces[sender] and t.tip >= self.min_tip]
            if not ready:
                continue
            tx = max(ready, key=lambda t: t.tip)
            for t in txs:
                if t.nonce == tx.nonce:
                    del self.pool[t.tx_hash]
            self.nonces[sender] += 1
            self.mined_txs.append((self.height, tx))
            self._execute(tx)

    def _execute(self, tx: PoolTx) -> None:
        logs: list[EthLog] = []
        created = None
        status = 0 if self.revert else 1
        if tx.to is None and status:
            created = str(Account.from_key("0x" + keccak(tx.raw).hex()).address)
            code = bytearray(load_artifact().deployed_bytecode)
            for start, length in load_artifact().immutable_ranges:
                code[start:start + length] = bytes(12) + bytes.fromhex(tx.sender[2:])
            self.codes[created.lower()] = bytes(code)
            self.owners[created.lower()] = tx.sender
        elif status and tx.data[:4] == _ANCHOR_SELECTOR:
            tag, root, lo, hi = decode(["bytes32", "bytes32", "uint64", "uint64"], tx.data[4:])
            assert tx.to is not None
            data = "0x" + encode(["bytes32", "uint64", "uint64"], [root, lo, hi]).hex()
            entry = EthLog(address=tx.to, topics=(anchored_topic(), "0x" + bytes(tag).hex()), data=data,
                           tx_hash=tx.tx_hash)
            logs.append(entry)
            self.all_logs.append((self.height, entry))
        self.receipts[tx.tx_hash] = Receipt(tx.tx_hash, self.height, self.block_hash_at(self.height), status, 24_900,
                                            self._base_fee + tx.tip, created, tuple(logs))

    def install_contract(self, owner: str = ADDRESS) -> str:
        """Put a CheckpointAnchor owned by `owner` at a fixed address; returns it."""
        address = "0x" + "ab" * 20
        code = bytearray(load_artifact().deployed_bytecode)
        for start, length in load_artifact().immutable_ranges:
            code[start:start + length] = bytes(12) + bytes.fromhex(owner[2:])
        self.codes[address] = bytes(code)
        self.owners[address] = owner
        from eth_utils.address import to_checksum_address

        return str(to_checksum_address(address))

    # -- EthClient ----------------------------------------------------------------------------
    def chain_id(self) -> int:
        self._up()
        return self._chain_id

    def block_number(self) -> int:
        self._up()
        return self.height

    def base_fee(self) -> int:
        self._up()
        return self._base_fee

    def suggested_tip(self) -> int:
        self._up()
        return self.suggested

    def balance(self, address: str) -> int:
        self._up()
        return self.balances[address.lower()]

    def nonce(self, address: str, block: str) -> int:
        self._up()
        latest = self.nonces[address]
        if block == "pending":
            mine = [t.nonce for t in self.pool.values() if t.sender == address]
            return max([latest - 1, *mine]) + 1
        return latest

    def code(self, address: str) -> bytes:
        self._up()
        return self.codes.get(address.lower(), b"")

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        self._up()
        if self.estimate_error:
            raise EthRPCError("eth_estimateGas", self.estimate_error)
        return self.gas_estimate

    def call(self, tx: dict[str, Any]) -> bytes:
        self._up()
        owner = self.owners.get(str(tx["to"]).lower())
        if owner is None:
            return b""
        return bytes(12) + bytes.fromhex(owner[2:])

    def send_raw(self, raw: bytes) -> str:
        self._up()
        tx_hash = "0x" + keccak(raw).hex()
        self.sent.append(tx_hash)
        assert raw[0] == 2, "only EIP-1559 (type 2) txs are expected"
        fields = rlp.decode(raw[1:])
        chain, nonce, tip, cap, _gas, to, _value, data = (fields[0], fields[1], fields[2], fields[3], fields[4],
                                                          fields[5], fields[6], fields[7])
        assert _int(chain) == self._chain_id
        sender = str(Account.recover_transaction(raw))
        tx = PoolTx(tx_hash, sender, _int(nonce), _int(tip), _int(cap), ("0x" + to.hex()) if to else None, data, raw)
        if tx_hash in self.pool:
            raise EthRPCError("eth_sendRawTransaction", "already known")
        if tx.nonce < self.nonces[sender]:
            raise EthRPCError("eth_sendRawTransaction", "nonce too low")
        for old in [t for t in self.pool.values() if t.sender == sender and t.nonce == tx.nonce]:
            if tx.tip * 10 < old.tip * 11 or tx.cap * 10 < old.cap * 11:
                raise EthRPCError("eth_sendRawTransaction", "replacement transaction underpriced")
            del self.pool[old.tx_hash]
        self.pool[tx_hash] = tx
        return tx_hash

    def receipt(self, tx_hash: str) -> Receipt | None:
        self._up()
        return self.receipts.get(tx_hash)

    def transaction_known(self, tx_hash: str) -> bool:
        self._up()
        return tx_hash in self.pool or tx_hash in self.receipts

    def block_hash(self, number: int) -> str | None:
        self._up()
        return self.block_hash_at(number) if number <= self.height else None

    def logs(self, address: str, topics: Sequence[str | None], from_block: int, to_block: int) -> list[EthLog]:
        self._up()
        return [e for h, e in self.all_logs if from_block <= h <= to_block and e.address.lower() == address.lower()
                and all(t is None or t == e.topics[i] for i, t in enumerate(topics))]


def config(**changes: Any) -> AnchorConfig:
    """Anchoring settings for the fake node."""
    base: dict[str, Any] = {"rpc_url": FakeEth.url, "key": KEY, "source": "test", "chain_id": 1337,
                            "confirmations": 2, "stuck_after_s": 3.0, "confirm_timeout_s": 120.0, "poll_s": 0.5}
    base.update(changes)
    return AnchorConfig(**base)


class FakeSource:
    """Checkpoints of a pretend chain: heights 1..top, version v of `digits` promoted at height 10*v."""

    chain_id = "test-chain"

    def __init__(self, top: int) -> None:
        self.top = top

    def latest_checkpoint_height(self) -> int:
        return self.top

    def checkpoint(self, h: int) -> Checkpoint:
        versions = ()
        if h % 10 == 0:
            v = h // 10
            versions = (CheckpointVersion("digits", v, f"bafk{v}", keccak(b"%d" % v).hex(), "promoted"),)
        return Checkpoint(self.chain_id, h, keccak(b"app%d" % h).hex(), versions)

    def checkpoints(self, from_height: int, to_height: int) -> list[Checkpoint]:
        assert to_height <= self.top
        return [self.checkpoint(h) for h in range(from_height, to_height + 1)]


class FakeRecorder:
    """The permissioned chain's anchor records, as a list."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.reanchors: list[dict[str, Any]] = []

    def anchored_to(self) -> int:
        return int(self.records[-1]["to_height"]) if self.records else 0

    def record(self, body: dict[str, Any]) -> int:
        self.records.append(dict(body))
        return 100 + len(self.records)

    def anchors(self) -> list[dict[str, Any]]:
        return [dict(r) | {"seq": i + 1} for i, r in enumerate(self.records)]

    def reanchor(self, body: dict[str, Any]) -> int:
        self.reanchors.append(dict(body))
        rec = self.records[int(body["seq"]) - 1]
        assert all(rec[k] == body[k] for k in ("root", "from_height", "to_height", "contract", "public_chain_id"))
        rec.update(tx_hash=body["tx_hash"], block_hash=body["block_hash"], block_number=body["block_number"])
        return 200 + len(self.reanchors)
