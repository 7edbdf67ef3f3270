"""Anchoring against a real `geth --dev` and a real one-validator FedLedger localnet.

One module-wide net and geth keep this fast: deploy, anchor, verify (and reject tampered proofs)
through the CLI as a user would; bad configurations anchor nothing; then the fault cases in
process: geth stopped right after the anchor tx was sent (retried, recorded only once
confirmed), a stuck tx replaced with higher fees, a tx dropped because its nonce was taken, a
fee ceiling that a stuck tx may not exceed, a dry run that sends nothing, and the encrypted
keystore path of the CLI. The geth miner demands a 2 gwei tip, so a tx offering 1 gwei stays
pending until replaced.

Reorgs: geth --dev cannot fork by itself, so a third geth rewinds its chain with `debug_setHead`
(the anchor tx's block leaves the canonical chain, and the dev miner builds new blocks on top).
Its pool does not put the tx back by itself; on a public chain other nodes' mempools still hold
it and the new fork includes it again, which the test does by re-broadcasting the tx's signed
bytes ("moved"). Left alone (and with the miner's minimum tip raised for the moment of the
rewind, `miner_setGasPrice`, so that no pool takes it back), the tx is gone, as on a fork that
never saw it ("reanchored" with a new tx). `anchor check` must notice both. This geth signs
with its own key: the same key and nonce would give the same contract address as on the other
dev chain (both chain id 1337), and anchors of both would look alike.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from fedledger.abci_app.errors import EXIT_STATUS, Family
from fedledger.localnet import manager
from fedledger.localnet.binaries import find_pinned
from fedledger.localnet.cometbft import default_bin_dir
from fedledger.localnet.dev import dev_credential
from fedledger.localnet.geth import DEV_CHAIN_ID, GETH_VERSION, GethDev, check_geth
from fedledger.localnet.ports import find_free_base_port
from fedledger.node.anchor.checkpoints import RPCCheckpoints
from fedledger.node.anchor.config import AnchorConfig
from fedledger.node.anchor.contract import decode_anchored
from fedledger.node.anchor.errors import PublicChainError
from fedledger.node.anchor.eth import EthRPCError, Web3Eth
from fedledger.node.anchor.public import PublicChain
from fedledger.node.anchor.service import AnchorService, ChainRecorder
from fedledger.node.anchor.verify import ProofBundle, verify_bundle
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.keys import KeyStore
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter
from tests.errorcodes import exit_status_of
from tests.support import payload_ref, use_pinned_cometbft

pytestmark = pytest.mark.integration

GWEI = 10**9
MINER_TIP = 2 * GWEI


@dataclass
class Env:
    home: Path  # client home (keys)
    net: Path  # localnet home
    rpc: CometRPC
    geth: GethDev
    key: str  # funded eth key (the contract's owner)
    contract: str
    admin: Submitter  # validator-admin on the permissioned chain

    def env(self, **extra: str) -> dict[str, str]:
        base = {"FEDLEDGER_ANCHOR_RPC": self.geth.rpc_url, "FEDLEDGER_ANCHOR_KEY": self.key,
                "FEDLEDGER_ANCHOR_CHAIN_ID": str(DEV_CHAIN_ID), "FEDLEDGER_ANCHOR_CONFIRMATIONS": "1"}
        return {**base, **extra}

    def config(self, **changes: Any) -> AnchorConfig:
        base = AnchorConfig(rpc_url=self.geth.rpc_url, key=self.key, source="test", chain_id=DEV_CHAIN_ID,
                            contract=self.contract, confirmations=1, stuck_after_s=2.0, poll_s=0.2, rpc_attempts=3,
                            confirm_timeout_s=120.0)
        return replace(base, **changes)

    def anchored(self) -> int:
        return int(ChainView(self.rpc).get("/anchors")["count"])


def _geth_binary() -> Path:
    found = find_pinned("GETH_BIN", default_bin_dir(), "geth", check_geth, log=lambda _m: None)
    if found is None:
        pytest.skip(f"no geth {GETH_VERSION} binary (set GETH_BIN or run `make binaries`)")
    return found


def _cli(kit: Any, env: Env, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """`fedledger --home H --localnet N …` with exactly the given anchoring settings (none of the caller's)."""
    cli_env = {k: v for k, v in kit.env().items() if not k.startswith("FEDLEDGER_ANCHOR_")}
    cli_env.update(extra_env if extra_env is not None else env.env())
    return kit.run(["--home", str(env.home), "--localnet", str(env.net), *args], env=cli_env, timeout=timeout)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, kit: Any) -> Iterator[Env]:
    binary = _geth_binary()
    restore = use_pinned_cometbft()
    root = tmp_path_factory.mktemp("anchor")
    base = find_free_base_port(40)
    # The localnet starts its own dev anchor chain (base + 6); the fault cases use a second geth (base + 17)
    # whose miner wants a 2 gwei tip, so that underpaid txs stick.
    geth = GethDev(root / "geth", base + 17, binary, miner_gasprice=MINER_TIP)  # base + 7: node 0's metrics
    dev_pid: int | None = None
    try:
        spec = manager.up(root / "net", 1, base_port=base, block_time_ms=200, timeout=60, log=lambda _m: None,
                          anchor_chain=True)
        dev_pid = int((root / "net" / "geth.pid").read_text())
        geth.start()
        rpc = CometRPC(spec.nodes[0].rpc_url)
        key = "0x" + bytes(Account.create().key).hex()
        geth.fund(str(Account.from_key(key).address), 100 * 10**18)
        home = root / "client"
        keys = KeyStore(home)
        admin = Submitter(rpc, keys.create("admin"))
        agg = Submitter(rpc, keys.create("agg"))
        for sub, role in ((admin, "validator-admin"), (agg, "aggregator")):
            sub.send("admit", {"credential": dev_credential(root / "net", sub.key, role)})
        # A task (its version 0 is a checkpointed, trusted version) created by the validator admin.
        admin.send("create_task", {"task_id": "digits", "model_spec": "mlp-digits", "round_size": 2,
                                   "min_contributions": 1, "deadline_blocks": 40, "aggregator": agg.key.public_hex,
                                   "initial_model": payload_ref("v0"),
                                   "privacy": {"epsilon": "8", "delta": "1e-5", "org_epsilon": None}})
        e = Env(home, root / "net", rpc, geth, key, "", admin)
        e.contract = PublicChain(e.config(contract=None)).deploy().address
        yield e
        rpc.close()
    finally:
        geth.stop()
        if manager.is_running(root / "net") is not None:
            manager.down(root / "net")
        restore()
    assert dev_pid is not None and not kit.pid_alive(dev_pid), "localnet down left the dev anchor chain running"


def test_deploy_anchor_verify_and_reject_tampered_proofs(env: Env, kit: Any, tmp_path: Path) -> None:
    # No FEDLEDGER_ANCHOR_* at all: everything goes to the localnet's own dev chain.
    extra: dict[str, str] = {}
    res = _cli(kit, env, "anchor", "deploy", extra_env=extra)
    assert res.rc == 0 and "saved in" in res.stdout, res.describe()
    dev = json.loads((env.net / "anchor.json").read_text())
    assert dev["chain_id"] == DEV_CHAIN_ID and dev["contract"].startswith("0x")
    res = _cli(kit, env, "anchor", "run", "--key", "admin", "--every", "1", "--once", "--json", extra_env=extra)
    assert res.rc == 0, res.describe()
    anchored = json.loads(res.stdout)
    assert anchored["from_height"] == 1 and anchored["to_height"] >= 3 and anchored["gas_used"] < 30_000

    res = _cli(kit, env, "anchor", "verify", "--task", "digits", "--version", "0", extra_env=extra)
    assert res.rc == 0 and "VERIFIED: digits v0" in res.stdout, res.describe()
    assert res.stdout.count("ok  ") == 5, res.describe()  # checkpoint, proof, chain, receipt, event

    proof = tmp_path / "proof.json"
    res = _cli(kit, env, "anchor", "proof", "--task", "digits", "--version", "0", "--out", str(proof), extra_env=extra)
    assert res.rc == 0, res.describe()
    bundle = json.loads(proof.read_text())
    tampered = json.loads(json.dumps(bundle))
    tampered["checkpoint"]["versions"][0]["cid"] = "bafkreievil"
    proof.write_text(json.dumps(tampered))
    res = _cli(kit, env, "anchor", "verify", "--proof", str(proof), "--json", extra_env=extra)
    verdict = json.loads(res.stdout)
    assert res.rc == EXIT_STATUS[Family.CRYPTO] and not verdict["verified"], res.describe()
    assert [c["name"] for c in verdict["checks"] if not c["ok"]] == ["inclusion proof"]

    # The same checks in process, against the live geth: the genuine bundle passes, forgeries fail.
    eth = Web3Eth(dev["rpc_url"])
    contract = dev["contract"]
    assert verify_bundle(ProofBundle.from_json(bundle), eth, contract=contract).ok
    bad_sibling = json.loads(json.dumps(bundle))
    bad_sibling["proof"]["siblings"][0] = "0x" + "00" * 32
    bad_root = json.loads(json.dumps(bundle))
    bad_root["anchor"]["root"] = "0x" + "11" * 32
    bad_tx = json.loads(json.dumps(bundle))
    bad_tx["anchor"]["tx_hash"] = "0x" + "22" * 32
    for forged, failing in ((bad_sibling, ["inclusion proof"]), (bad_root, ["inclusion proof", "Anchored event"]),
                            (bad_tx, ["receipt"])):
        verdict_ = verify_bundle(ProofBundle.from_json(forged), eth, contract=contract)
        assert [c.name for c in verdict_.checks if not c.ok] == failing
    other_contract = verify_bundle(ProofBundle.from_json(bundle), eth, contract="0x" + "42" * 20)
    assert [c.name for c in other_contract.checks if not c.ok] == ["Anchored event"]


def test_bad_configuration_anchors_nothing(env: Env, kit: Any) -> None:
    before = env.anchored()
    unfunded = "0x" + bytes(Account.create().key).hex()
    dead = f"http://127.0.0.1:{find_free_base_port(1)}"
    cases = [
        (env.env(FEDLEDGER_ANCHOR_CHAIN_ID="11155111", FEDLEDGER_ANCHOR_CONTRACT=env.contract),
         ["run", "--key", "admin", "--every", "1", "--once"],
         "serves chain id 1337, but the configuration (environment) expects 11155111"),
        (env.env(FEDLEDGER_ANCHOR_KEY=unfunded), ["deploy"], "holds 0 wei on chain 1337"),
        (env.env(FEDLEDGER_ANCHOR_RPC=dead, FEDLEDGER_ANCHOR_CONTRACT=env.contract),
         ["run", "--key", "admin", "--every", "1", "--once"], f"no Ethereum node answers at {dead}"),
        (env.env(FEDLEDGER_ANCHOR_CONTRACT="0x" + "42" * 20), ["run", "--key", "admin", "--every", "1", "--once"],
         "there is no contract at 0x4242"),
        (env.env(FEDLEDGER_ANCHOR_KEY=unfunded, FEDLEDGER_ANCHOR_CONTRACT=env.contract),
         ["run", "--key", "admin", "--every", "1", "--once"], "anchors only for its owner"),
        (env.env(FEDLEDGER_ANCHOR_CONTRACT=env.contract), ["run", "--key", "agg", "--every", "1", "--once"],
         "key agg is an active aggregator; recording anchors needs role validator-admin"),
    ]
    for extra, args, message in cases:
        res = _cli(kit, env, "anchor", *args, extra_env=extra)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.stderr, res.describe()
        printed = re.search(r" \[([A-Z0-9_]+)\]$", lines[0])
        assert printed is not None and res.rc == exit_status_of(printed.group(1)), res.describe()
    assert env.anchored() == before


def _service(env: Env, cfg: AnchorConfig, **kw: Any) -> AnchorService:
    return AnchorService(PublicChain(cfg), RPCCheckpoints(env.rpc), ChainRecorder(env.admin), **kw)


def _wait_blocks(env: Env, n: int) -> None:
    target = env.rpc.height() + n
    while env.rpc.height() < target:
        time.sleep(0.1)


def test_geth_stopped_mid_anchor_is_retried_and_recorded_only_once_confirmed(env: Env) -> None:
    _wait_blocks(env, 2)
    before = env.anchored()
    seen: dict[str, Any] = {}

    def restart_later() -> None:
        time.sleep(3)
        seen["anchored_while_down"] = env.anchored()
        env.geth.start()

    def stop_geth(tx_hash: str, attempt: int) -> None:
        if "first" not in seen:
            seen["first"] = tx_hash
            env.geth.stop()
            seen["thread"] = threading.Thread(target=restart_later, daemon=True)
            seen["thread"].start()

    result = _service(env, env.config(confirmations=2), on_sent=stop_geth).anchor_once()
    seen["thread"].join()
    assert result is not None and result.outages >= 1
    assert seen["anchored_while_down"] == before  # nothing was recorded while geth was down
    assert env.anchored() == before + 1
    receipt = Web3Eth(env.geth.rpc_url).receipt(result.tx_hash)
    assert receipt is not None and receipt.status == 1 and result.confirmations >= 2
    assert ChainView(env.rpc).get("/anchor/latest")["tx_hash"] == result.tx_hash.lower()


def test_stuck_tx_is_replaced(env: Env) -> None:
    _wait_blocks(env, 2)
    result = _service(env, env.config(priority_fee_wei=GWEI, stuck_after_s=2.0)).anchor_once()
    assert result is not None and len(result.attempts) >= 2 and result.tx_hash == result.attempts[-1]
    eth = Web3Eth(env.geth.rpc_url)
    assert eth.receipt(result.attempts[0]) is None  # the underpaid original never made it
    latest = ChainView(env.rpc).get("/anchor/latest")
    assert latest["tx_hash"] == result.tx_hash.lower() and latest["to_height"] == result.to_height


def test_dropped_tx_is_sent_again(env: Env) -> None:
    _wait_blocks(env, 2)
    eth = Web3Eth(env.geth.rpc_url)
    account = Account.from_key(env.key)
    taken: dict[str, Any] = {}

    def take_nonce(tx_hash: str, attempt: int) -> None:
        if taken:
            return
        nonce = int(eth.w3.eth.get_transaction(tx_hash)["nonce"])  # type: ignore[arg-type]
        base = eth.base_fee()
        foreign = account.sign_transaction({
            "type": 2, "chainId": DEV_CHAIN_ID, "nonce": nonce, "to": account.address, "value": 0, "gas": 21_000,
            "maxPriorityFeePerGas": 3 * GWEI, "maxFeePerGas": 2 * base + 3 * GWEI})
        taken["foreign"] = eth.send_raw(bytes(foreign.raw_transaction))
        taken["ours"] = tx_hash

    before = env.anchored()
    result = _service(env, env.config(priority_fee_wei=GWEI, stuck_after_s=2.0), on_sent=take_nonce).anchor_once()
    assert result is not None and taken["ours"] in result.attempts and result.tx_hash != taken["ours"]
    assert eth.receipt(taken["ours"]) is None
    foreign = eth.receipt(taken["foreign"])
    assert foreign is not None and foreign.status == 1
    assert env.anchored() == before + 1


def test_dry_run_prints_gas_and_cost_and_sends_nothing(env: Env, kit: Any) -> None:
    _wait_blocks(env, 2)
    eth = Web3Eth(env.geth.rpc_url)
    address = str(Account.from_key(env.key).address)
    nonces = (eth.nonce(address, "latest"), eth.nonce(address, "pending"))
    before = env.anchored()
    res = _cli(kit, env, "anchor", "run", "--key", "admin", "--every", "1", "--dry-run", "--json",
               extra_env=env.env(FEDLEDGER_ANCHOR_CONTRACT=env.contract))
    assert res.rc == 0, res.describe()
    plan = json.loads(res.stdout)
    assert plan["dry_run"] and plan["chain_id"] == DEV_CHAIN_ID and plan["contract"] == env.contract
    assert plan["from_height"] == before_to(env) + 1 and plan["to_height"] >= plan["from_height"]
    assert 20_000 < plan["gas"] < 60_000 and plan["nonce"] == nonces[1]
    assert plan["max_cost_wei"] == plan["gas"] * plan["max_fee_wei"] >= plan["cost_now_wei"] > 0
    assert plan["cost_now_wei"] == plan["gas"] * min(plan["base_fee_wei"] + plan["tip_wei"], plan["max_fee_wei"])
    res = _cli(kit, env, "anchor", "deploy", "--dry-run", extra_env=env.env())
    assert res.rc == 0 and "dry run, nothing sent: deploy CheckpointAnchor" in res.stdout, res.describe()
    assert re.search(r"cost +at most [0-9.]+ ETH \(gas × fee cap\); [0-9.]+ ETH at the current base fee", res.stdout)
    time.sleep(1.5)  # a block or more: anything sent would now be pending or mined
    assert (eth.nonce(address, "latest"), eth.nonce(address, "pending")) == nonces
    assert env.anchored() == before


def before_to(env: Env) -> int:
    return int(ChainView(env.rpc).get("/anchors")["anchored_to"])


def test_keystore_configuration_anchors(env: Env, kit: Any, tmp_path: Path) -> None:
    _wait_blocks(env, 2)
    (tmp_path / "raw").write_text(env.key + "\n")
    (tmp_path / "pw").write_text("integration-test-password\n")
    keystore = tmp_path / "anchor.keystore.json"
    res = _cli(kit, env, "anchor", "keystore", "import", "--out", str(keystore), "--key-file", str(tmp_path / "raw"),
               "--password-file", str(tmp_path / "pw"))
    assert res.rc == 0 and str(Account.from_key(env.key).address) in res.stdout, res.describe()
    (tmp_path / "raw").unlink()
    config = tmp_path / "anchor.json"
    config.write_text(json.dumps({"rpc_url": env.geth.rpc_url, "keystore": keystore.name, "password_file": "pw",
                                  "chain_id": DEV_CHAIN_ID, "contract": env.contract, "confirmations": 1,
                                  "max_fee_wei": 50 * GWEI}))
    res = _cli(kit, env, "anchor", "status", "--config", str(config), "--json", extra_env={})
    assert res.rc == 0 and json.loads(res.stdout)["key"] == f"keystore {keystore}", res.describe()
    before = env.anchored()
    res = _cli(kit, env, "anchor", "run", "--key", "admin", "--every", "1", "--once", "--json", "--config",
               str(config), extra_env={})
    assert res.rc == 0, res.describe()
    done = json.loads(res.stdout)
    assert env.anchored() == before + 1 and ChainView(env.rpc).get("/anchor/latest")["tx_hash"] == done["tx_hash"]
    # A wrong password is one clear line, and nothing is sent.
    (tmp_path / "pw").write_text("not the password\n")
    res = _cli(kit, env, "anchor", "run", "--key", "admin", "--every", "1", "--once", "--config", str(config),
               extra_env={})
    assert res.rc != 0 and "wrong password" in res.stderr and "Traceback" not in res.stderr, res.describe()
    # The raw key on the command line is refused before anything runs.
    res = _cli(kit, env, "anchor", "run", "--key", env.key, "--once", extra_env={})
    assert res.rc != 0 and "looks like a raw private key" in res.stderr and env.key not in res.stderr


def test_fee_ceiling_is_kept_and_a_stuck_tx_is_not_replaced_above_it(env: Env) -> None:
    _wait_blocks(env, 2)
    eth = Web3Eth(env.geth.rpc_url)
    key = "0x" + bytes(Account.create().key).hex()
    account = Account.from_key(key)
    env.geth.fund(str(account.address), 10 * 10**18)
    own = replace(env.config(key=key, contract=None), max_fee_wei=40 * GWEI)
    deployment = PublicChain(own).deploy()
    contract = deployment.address
    deployed = eth.w3.eth.get_transaction(deployment.tx_hash)  # type: ignore[arg-type]
    assert int(deployed["maxFeePerGas"]) <= 40 * GWEI  # type: ignore[typeddict-item]
    # 1 gwei tip (the miner wants 2) with a ceiling of 1.1 gwei: it sticks, and no replacement fits the ceiling.
    ceiling = GWEI + GWEI // 10
    cfg = replace(env.config(key=key, contract=contract), priority_fee_wei=GWEI, max_fee_wei=ceiling,
                  stuck_after_s=2.0)
    sent: list[str] = []
    before = env.anchored()
    with pytest.raises(PublicChainError, match="above max_fee_wei"):
        _service(env, cfg, on_sent=lambda h, _n: sent.append(h)).anchor_once()
    assert len(sent) == 1 and eth.receipt(sent[0]) is None and env.anchored() == before
    stuck = eth.w3.eth.get_transaction(sent[0])  # type: ignore[arg-type]
    assert int(stuck["maxFeePerGas"]) <= ceiling  # type: ignore[typeddict-item]
    # Unstick the key's nonce so that nothing is left pending on the shared geth.
    nonce = int(stuck["nonce"])  # type: ignore[typeddict-item]
    clear = account.sign_transaction({"type": 2, "chainId": DEV_CHAIN_ID, "nonce": nonce, "to": account.address,
                                      "value": 0, "gas": 21_000, "maxPriorityFeePerGas": 3 * GWEI,
                                      "maxFeePerGas": 2 * eth.base_fee() + 3 * GWEI})
    cleared = eth.send_raw(bytes(clear.raw_transaction))
    deadline = time.monotonic() + 30
    while eth.receipt(cleared) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert eth.receipt(cleared) is not None


# ----------------------------------------------------------------------------- reorgs on a rewound dev chain
@dataclass
class Reorg:
    geth: GethDev
    contract: str
    cfg: AnchorConfig

    def rewind_below(self, block_number: int) -> None:
        """debug_setHead to the block before `block_number`: that block leaves the canonical chain."""
        self.geth.rpc("debug_setHead", hex(block_number - 1))


@pytest.fixture(scope="module")
def reorg(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reorg]:
    geth = GethDev(tmp_path_factory.mktemp("reorg") / "geth", find_free_base_port(1), _geth_binary(),
                   extra_apis=("debug", "miner"), no_locals=True)
    geth.start()
    try:
        key = "0x" + bytes(Account.create().key).hex()
        geth.fund(str(Account.from_key(key).address), 100 * 10**18)
        cfg = replace(env.config(contract=None, key=key), rpc_url=geth.rpc_url)
        contract = PublicChain(cfg).deploy().address
        yield Reorg(geth, contract, cfg.with_contract(contract))
    finally:
        geth.stop()


def _anchor_on(env: Env, r: Reorg) -> Any:
    _wait_blocks(env, 2)
    result = _service(env, r.cfg).anchor_once()
    assert result is not None
    (found,) = [c for c in _service(env, r.cfg).check() if c.seq == env.anchored()]
    assert found.status == "ok" and found.tx_hash == result.tx_hash.lower()
    return result


def test_reorg_that_reincludes_the_tx_moves_the_anchor_to_its_new_block(env: Env, reorg: Reorg) -> None:
    result = _anchor_on(env, reorg)
    eth = Web3Eth(reorg.geth.rpc_url)
    raw = bytes.fromhex(str(reorg.geth.rpc("eth_getRawTransactionByHash", result.tx_hash))[2:])
    reorg.rewind_below(result.block_number)
    assert eth.block_hash(result.block_number) != result.block_hash  # the recorded block is not canonical now
    try:
        eth.send_raw(raw)  # what a peer's mempool does on a public chain: the new fork includes the tx again
    except EthRPCError as exc:
        assert "already known" in exc.message
    deadline = time.monotonic() + 60
    while (again := eth.receipt(result.tx_hash)) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert again is not None and again.block_hash != result.block_hash
    seq = env.anchored()
    checks = _service(env, reorg.cfg).check()
    (found,) = [c for c in checks if c.seq == seq]
    assert found.status == "moved" and found.tx_hash == result.tx_hash.lower() == found.replaced_tx_hash
    rec = ChainView(env.rpc).get(f"/anchor/{seq}")
    receipt = eth.receipt(result.tx_hash)
    assert receipt is not None and rec["block_hash"] == receipt.block_hash.lower() != result.block_hash.lower()
    assert rec["replaced"][0]["block_hash"] == result.block_hash.lower() and env.anchored() == seq
    assert all(c.status == "ok" for c in _service(env, reorg.cfg).check())  # nothing left to fix


def test_reorg_that_loses_the_tx_is_anchored_again_by_anchor_check(env: Env, reorg: Reorg, kit: Any) -> None:
    result = _anchor_on(env, reorg)
    eth = Web3Eth(reorg.geth.rpc_url)
    address = str(Account.from_key(reorg.cfg.key).address)
    nonce_before = eth.nonce(address, "latest")
    reorg.geth.rpc("miner_setGasPrice", hex(10**6 * GWEI))  # the pool refuses to take the tx back...
    reorg.rewind_below(result.block_number)
    _wait_public_blocks(eth, 2)
    reorg.geth.rpc("miner_setGasPrice", hex(1))  # ...and then accepts ordinary tips again
    assert eth.receipt(result.tx_hash) is None and not eth.transaction_known(result.tx_hash)
    assert eth.nonce(address, "latest") == nonce_before - 1  # the rewound chain never saw the tx
    seq = env.anchored()
    extra = env.env(FEDLEDGER_ANCHOR_RPC=reorg.geth.rpc_url, FEDLEDGER_ANCHOR_KEY=reorg.cfg.key,
                    FEDLEDGER_ANCHOR_CONTRACT=reorg.contract)
    res = _cli(kit, env, "anchor", "check", "--key", "admin", "--json", extra_env=extra)
    assert res.rc == 0, res.describe()
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    (found,) = [c for c in lines if c["seq"] == seq]
    assert found["status"] == "reanchored" and found["replaced_tx_hash"] == result.tx_hash.lower()
    rec = ChainView(env.rpc).get(f"/anchor/{seq}")
    receipt = eth.receipt(rec["tx_hash"])
    assert receipt is not None and receipt.status == 1 and eth.block_hash(receipt.block_number) == receipt.block_hash
    events = [decode_anchored(x) for x in receipt.logs]
    assert any(e is not None and "0x" + e.root.hex() == rec["root"] == result.root and
               (e.from_height, e.to_height) == (result.from_height, result.to_height) for e in events)
    assert rec["replaced"][-1]["tx_hash"] == result.tx_hash.lower() and env.anchored() == seq
    # Checked again, every anchor of the contract is in a canonical block.
    res = _cli(kit, env, "anchor", "check", "--key", "admin", extra_env=extra)
    assert res.rc == 0 and "0 re-anchored after a reorg" in res.stdout, res.describe()


def _wait_public_blocks(eth: Web3Eth, n: int) -> None:
    target = eth.block_number() + n
    deadline = time.monotonic() + 30
    while eth.block_number() < target and time.monotonic() < deadline:
        time.sleep(0.2)
