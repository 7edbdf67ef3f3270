"""A 5th organization joins a running 4-validator localnet with its validator, and is later voted out.

The fifth node starts as a full node that block-syncs from the others (localnet/join.py). Its
organization and validator are added by a proposal made and voted with the CLI (`fedledger gov
propose add-validator`, `gov vote`); the test then sees CometBFT's `/validators` on every node list
5 with the right powers and the new validator sign blocks, votes it out (`remove-validator
--remove-organization`), and sees 4 again. Throughout, every node's `abci_info` app hash agrees at
each height two nodes report, and so do the validator sets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.localnet import manager
from fedledger.localnet.consortium import dev_app_state
from fedledger.localnet.join import JoinedNode, prepare_joiner
from fedledger.localnet.ports import find_free_base_port
from fedledger.sdk.errors import RPCUnavailableError
from fedledger.sdk.rpc import CometRPC
from tests.integration.conftest import down_if_running
from tests.support import find_cometbft, named_key, use_pinned_cometbft

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

VOTING_PERIOD = 50  # blocks (~15-30 s): room for two CLI runs, seconds each on a loaded machine
NEW_POWER = 5  # under 1/3 of 45: the chain stays live even before the newcomer has caught up


class Watch:
    """Every node's RPC, and what each reported: app hash per height, validator sets per height."""

    def __init__(self, urls: list[str]) -> None:
        self.rpcs = [CometRPC(u) for u in urls]
        self.app_hashes: dict[int, dict[int, str]] = {}  # height -> node -> last_block_app_hash

    def add(self, url: str) -> None:
        self.rpcs.append(CometRPC(url))

    def sample(self) -> None:
        """Note each node's abci_info; fail at once if two nodes report different app hashes at one height."""
        for i, rpc in enumerate(self.rpcs):
            try:
                info = rpc.call("abci_info")["response"]
            except RPCUnavailableError:  # a node still starting: nothing to compare yet
                continue
            height = int(info.get("last_block_height", 0))
            if height > 0:
                self.app_hashes.setdefault(height, {})[i] = str(info.get("last_block_app_hash"))
                assert len(set(self.app_hashes[height].values())) == 1, (height, self.app_hashes[height])

    def validators(self, i: int, height: int | None = None) -> dict[str, int]:
        params: dict[str, Any] = {"per_page": "100"}
        if height is not None:
            params["height"] = str(height)
        res = self.rpcs[i].call("validators", **params)
        return {v["pub_key"]["value"]: int(v["voting_power"]) for v in res["validators"]}

    def height(self, i: int) -> int:
        """Node i's latest height; -1 while its RPC does not answer yet (a node starting up)."""
        try:
            return self.rpcs[i].height()
        except RPCUnavailableError:
            return -1

    def wait(self, what: str, cond: Any, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.sample()
            if cond():
                return
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.5)

    def close(self) -> None:
        for rpc in self.rpcs:
            rpc.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, JoinedNode]]:
    cometbft = find_cometbft()
    if cometbft is None:
        pytest.fail("no pinned cometbft binary (bin/cometbft or $COMETBFT_BIN)")
    restore_env = use_pinned_cometbft()
    home = tmp_path_factory.mktemp("valset") / "net"
    home.mkdir()
    app_state = dev_app_state(home)
    app_state["governance"] = {"voting_period_blocks": VOTING_PERIOD}
    joiner: JoinedNode | None = None
    try:
        # 50 ports: the net's 4 nodes use base .. base+39, the joiner base+40 .. base+49.
        manager.up(home, validators=4, base_port=find_free_base_port(50), block_time_ms=300, timeout=120,
                   log=lambda m: None, app_state=app_state)
        joiner = prepare_joiner(home, cometbft)
        yield home, joiner
    finally:
        if joiner is not None:
            joiner.stop()
        restore_env()
        down_if_running(home)


def _gov(kit: Any, home: Path, *args: str) -> str:
    res = kit.run(["--localnet", str(home), "gov", *args], env=kit.env(), timeout=90)
    assert res.rc == 0, res.describe()
    return str(res.stdout)


def _pass(kit: Any, home: Path, watch: Watch, *propose: str) -> int:
    """Propose with the CLI as `local`'s admin, vote yes, wait for the tally; the proposal's final height."""
    out = _gov(kit, home, "propose", *propose)
    pid = int(out.split("proposal ", 1)[1].split()[0])
    _gov(kit, home, "vote", str(pid), "yes")
    final: dict[str, Any] = {}

    def tallied() -> bool:
        res = watch.rpcs[0].abci_query(f"/proposal/{pid}")
        final.update(json.loads(res.value))
        return final["status"] != "voting"

    watch.wait(f"proposal {pid} tallied", tallied)
    assert final["status"] == "passed", final
    return int(final["final_height"])


def test_a_fifth_organization_joins_and_is_voted_out(net: tuple[Path, JoinedNode], kit: Any,
                                                    tmp_path: Path) -> None:
    home, joiner = net
    started = time.monotonic()
    watch = Watch([manager.rpc_url(home, i) for i in range(4)])
    try:
        genesis = watch.validators(0)
        assert len(genesis) == 4 and set(genesis.values()) == {10}
        watch.wait("the net to make blocks", lambda: watch.height(0) >= 3)
        # The fifth node: a full node first, caught up by block sync from the four.
        joiner.start()
        watch.add(joiner.node.rpc_url)
        try:
            watch.wait("node4 to catch up", lambda: watch.height(4) >= watch.height(0) - 1, timeout=120)
        except AssertionError:
            raise AssertionError(joiner.node.cometbft_log.read_text()[-3000:]
                                 + joiner.node.app_log.read_text()[-2000:]) from None
        # Organization "fifth" (its own issuer and admin) joins with node4's validator key. Weight 0 keeps
        # `local` the only voter, so the CLI's development admin alone passes both proposals.
        issuer, admin = named_key("valset-fifth-issuer"), named_key("valset-fifth-admin")
        org = tmp_path / "fifth.json"
        org.write_text(json.dumps({"id": "fifth", "name": "Fifth hospital", "enrollment_cap": 5,
                                   "issuers": [did_from_private_key(issuer.private)],
                                   "admins": [did_from_private_key(admin.private)]}))
        added = _pass(kit, home, watch, "add-validator", "--pub-key", str(joiner.node.cometbft_home),
                      "--power", str(NEW_POWER), "--new-organization", str(org), "--weight", "0")
        expected = {**genesis, joiner.pub_key: NEW_POWER}
        # CometBFT applies the updates of block H from H+2.
        watch.wait("every node to sign with 5", lambda: all(watch.height(i) >= added + 3 for i in range(5)))
        for i in range(5):
            assert watch.validators(i, added + 1) == genesis, f"node{i} changed its set before H+2"
            assert watch.validators(i, added + 2) == expected, f"node{i} at {added + 2}"
        app_view = json.loads(watch.rpcs[4].abci_query("/validators").value)
        assert {v["pub_key"]: v["power"] for v in app_view["validators"]} == expected
        # node4 signs: its address is in the commit of blocks after H+2.
        address = joiner.node.validator_address
        watch.wait("node4 to sign a block", lambda: any(
            s.get("validator_address") == address and s.get("block_id_flag") == 2
            for s in watch.rpcs[0].commit(watch.height(0) - 1)["signed_header"]["commit"]["signatures"]))
        # Voted out again, with its organization.
        removed = _pass(kit, home, watch, "remove-validator", "--pub-key", joiner.pub_key, "--remove-organization")
        watch.wait("every node past the removal", lambda: all(watch.height(i) >= removed + 3 for i in range(5)))
        for i in range(5):
            assert watch.validators(i, removed + 1) == expected, f"node{i} at {removed + 1}"
            assert watch.validators(i, removed + 2) == genesis, f"node{i} at {removed + 2}"
        assert watch.rpcs[0].abci_query("/org/fifth").code != 0  # the organization went with it
        # Agreement: every height two or more nodes reported had one app hash (checked on each sample).
        shared = [h for h, by_node in watch.app_hashes.items() if len(by_node) >= 2]
        assert len(shared) >= 5, watch.app_hashes
        assert time.monotonic() - started < 300
    finally:
        watch.close()
