"""`localnet up --ceremony`: a localnet whose nodes were made by `node init` and whose genesis by `genesis assemble`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedledger.localnet import manager
from fedledger.localnet.cometbft import COMETBFT_VERSION
from fedledger.localnet.errors import NotRunningError
from fedledger.localnet.ports import find_free_base_port
from tests.integration.conftest import PORT_BLOCK, run_fedledger
from tests.support import find_cometbft

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    if find_cometbft() is None:
        pytest.skip(f"no cometbft {COMETBFT_VERSION} binary (set COMETBFT_BIN)")
    h = tmp_path / "net"
    yield h
    if manager.is_running(h) is not None:
        try:
            manager.down(h)
        except NotRunningError:
            pass


def test_localnet_up_by_the_ceremony_commits_with_one_organization_per_node(home: Path) -> None:
    base = find_free_base_port(PORT_BLOCK)
    res = run_fedledger(["localnet", "up", "--ceremony", "--home", str(home), "--validators", "4",
                         "--base-port", str(base), "--no-anchor-chain"], timeout=240)
    assert res.rc == 0, res.describe()
    assert "by the genesis ceremony" in res.stderr
    nodes = manager.status(home)
    assert len(nodes) == 4 and all(n.alive for n in nodes), nodes
    manager.wait_for_height(home, 4, 120)
    genesis = json.loads((home / "node0" / "cometbft" / "config" / "genesis.json").read_text())
    assert [o["id"] for o in genesis["app_state"]["identity"]["organizations"]] == ["org0", "org1", "org2", "org3"]
    hashes = {manager.rpc_get(n.rpc_url, "block", {"height": 4})["block"]["header"]["app_hash"] for n in nodes}
    assert len(hashes) == 1
    down = run_fedledger(["localnet", "down", "--home", str(home)])
    assert down.rc == 0, down.describe()
