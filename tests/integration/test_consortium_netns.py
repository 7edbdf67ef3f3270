"""A 4-organization consortium, each host in its own network namespace, built only through the ceremony CLI.

`fedledger node init` in each namespace, `genesis assemble` by one organization, `genesis hash
--expect` by every one, `node start --genesis-hash` in each namespace: then blocks, equal app
hashes, and the faults of issue #17: one host partitioned (CI: 15 s, FEDLEDGER_PARTITION_S to
change) catches up by itself; two of four partitioned halt the chain, which resumes on heal.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedledger.localnet.cometbft import COMETBFT_VERSION
from fedledger.localnet.manager import rpc_get
from fedledger.localnet.netns import NetnsLab, netns_unavailable_reason
from fedledger.localnet.nslab import ConsortiumLab
from tests.integration.conftest import cli_env
from tests.support import find_cometbft

pytestmark = pytest.mark.integration

HOSTS = 4
PARTITION_S = float(os.environ.get("FEDLEDGER_PARTITION_S", "15"))
# The machine running CI is loaded: generous, but bounded, waits.
START_TIMEOUT_S = 180.0
CATCH_UP_TIMEOUT_S = 150.0


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _logs(c: ConsortiumLab) -> str:
    return "\n".join(f"--- {h.org} cometbft.log\n{_tail(h.home / 'cometbft.log')}" for h in c.hosts)


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsortiumLab]:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no network namespaces on this machine: {reason}")
    cometbft = find_cometbft()
    if cometbft is None:
        pytest.skip(f"no cometbft {COMETBFT_VERSION} binary (set COMETBFT_BIN)")
    env = cli_env(COMETBFT_BIN=str(cometbft))
    with NetnsLab(HOSTS) as lab:
        c = ConsortiumLab(lab, tmp_path_factory.mktemp("consortium"), block_time_ms=500, env=env)
        try:
            c.ceremony()
            c.wait_height(2, range(HOSTS), START_TIMEOUT_S)
            yield c
        finally:
            c.stop_all()
    assert not lab.destroy()


def test_the_ceremony_builds_a_chain_with_equal_app_hashes(consortium: ConsortiumLab) -> None:
    c = consortium
    heights = c.wait_height(4, range(HOSTS), START_TIMEOUT_S)
    h = min(heights.values()) - 1
    hashes = {c.app_hash_after(i, h) for i in range(HOSTS)}
    assert len(hashes) == 1 and len(next(iter(hashes))) == 64, hashes
    for i, host in enumerate(c.hosts):
        info = rpc_get(host.rpc_url, "net_info")
        assert int(info["n_peers"]) == HOSTS - 1, info
        # The peers are the other namespaces' bridge addresses: the traffic crosses the bridge.
        assert {p["remote_ip"] for p in info["peers"]} == {o.net.ip for o in c.hosts if o.net.index != i}
    genesis = json.loads((c.hosts[0].home / "genesis.json").read_text())
    assert [v["name"] for v in genesis["validators"]] == [h.org for h in c.hosts]
    assert [o["id"] for o in genesis["app_state"]["identity"]["organizations"]] == [h.org for h in c.hosts]


def test_no_host_holds_another_hosts_private_key(consortium: ConsortiumLab) -> None:
    secrets = []
    for host in consortium.hosts:
        validator = json.loads((host.home / "cometbft" / "config" / "priv_validator_key.json").read_text())
        node = json.loads((host.home / "cometbft" / "config" / "node_key.json").read_text())
        secrets.append((host, [validator["priv_key"]["value"], node["priv_key"]["value"],
                               (host.home / "issuer.key").read_text().strip()]))
    for host, _ in secrets:
        text = "".join(p.read_text(errors="replace") for p in host.home.rglob("*")
                       if p.is_file() and p.stat().st_size < 1 << 20)
        for other, keys in secrets:
            if other is not host:
                assert not any(k in text for k in keys), f"{host.org} holds a private key of {other.org}"


def test_a_partitioned_host_catches_up_after_the_link_returns(consortium: ConsortiumLab) -> None:
    c = consortium
    cut = HOSTS - 1
    others = range(cut)
    before = c.wait_height(1, others, 30)
    c.lab.link_down(cut)
    try:
        assert c.height(cut) is None  # unreachable from the bridge too
        time.sleep(PARTITION_S)
        during = c.wait_height(max(before.values()) + 3, others, 60)  # the other three keep committing
    finally:
        c.lab.link_up(cut)
    target = max(during.values())
    try:
        c.wait_height(target, [cut], CATCH_UP_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - add the logs to whatever went wrong
        pytest.fail(f"{c.hosts[cut].org} did not catch up: {exc}\n{_logs(c)}")
    assert c.app_hash_after(cut, target - 1) == c.app_hash_after(0, target - 1)


def test_two_of_four_partitioned_halt_the_chain_which_resumes_on_heal(consortium: ConsortiumLab) -> None:
    c = consortium
    c.wait_height(1, range(HOSTS), CATCH_UP_TIMEOUT_S)
    cut = (2, 3)
    for i in cut:
        c.lab.link_down(i)
    try:
        time.sleep(3.0)  # a block already under way may still commit
        halted = {i: c.height(i) for i in (0, 1)}
        time.sleep(10.0)
        later = {i: c.height(i) for i in (0, 1)}
        assert all(v is not None for v in halted.values()), halted
        assert later == halted, f"half the power kept committing: {halted} -> {later}"
    finally:
        for i in cut:
            c.lab.link_up(i)
    top = max(v or 0 for v in halted.values())
    try:
        c.wait_height(top + 3, range(HOSTS), CATCH_UP_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - add the logs to whatever went wrong
        pytest.fail(f"the chain did not resume after the heal: {exc}\n{_logs(c)}")


def test_a_stopped_host_restarts_on_its_home_and_catches_up(consortium: ConsortiumLab) -> None:
    c = consortium
    i = 1
    c.stop(i)
    assert c.height(i) is None
    top = max(c.wait_height(1, [0, 2, 3], 60).values())
    c.wait_height(top + 3, [0, 2, 3], 60)  # 3 of 4 carry on without it
    c.start(i)  # same home, same genesis: its chain data is kept
    status = json.loads(c.fedledger(i, ["node", "status", "--home", str(c.hosts[i].home)]))
    assert status[0]["alive"] and status[0]["rpc_url"].startswith("http://127.0.0.1:")
    target = max(v or 0 for v in (c.height(j) for j in range(HOSTS)))
    c.wait_height(target, [i], CATCH_UP_TIMEOUT_S)
    assert c.app_hash_after(i, target - 1) == c.app_hash_after(0, target - 1)
