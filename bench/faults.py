"""`fedledger bench faults`: a 4-organization consortium in network namespaces under partitions and WAN delay.

The consortium is built only through the ceremony CLI (localnet/nslab.py). Then, on the same
chain: (1) one host's link goes down for ``partition_s`` (60 s by default): how many blocks the
other three commit meanwhile, and how long the cut host takes to catch up after the link returns;
(2) two of four links go down for ``halt_s``: blocks committed meanwhile (must be 0) and the time
to the next block after the heal; (3) block intervals, from the blocks' own BFT times, first on the
bare bridge and then with `tc netem` ``delay_ms`` ± ``jitter_ms`` on every host's link (p50/p95 of
the interval, and of the interval minus timeout_commit, i.e. what consensus itself took). A kernel
without netem reports why instead of figures.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedledger.localnet.errors import LocalnetError
from fedledger.localnet.netns import NetnsLab, netem_unavailable_reason, netns_unavailable_reason
from fedledger.localnet.nslab import ConsortiumLab

__all__ = ["block_times", "percentile", "run_faults"]

HOSTS = 4
_WARMUP_BLOCKS = 3
_RELAY_OFFSET = 9  # a host's spare port (p2p +0, RPC +1, ABCI +2, EVM RPC +8)
_WAIT_S = 300.0


def _quiet(_msg: str) -> None:
    pass


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; ValueError for no values."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$")


def _parse_time(text: str) -> float:
    m = _TIME_RE.match(text)
    if m is None:
        raise LocalnetError(f"unexpected block time {text!r}")
    whole = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return whole + (int((m.group(2) or "0").ljust(9, "0")) / 1e9)


def block_times(c: ConsortiumLab, host: int, first: int, last: int) -> dict[int, float]:
    """The BFT time (unix seconds) of blocks ``first..last`` as host ``host`` stored them."""
    from fedledger.localnet.manager import rpc_get

    out: dict[int, float] = {}
    lo = first
    while lo <= last:
        hi = min(lo + 19, last)  # /blockchain returns at most 20 metas
        metas = rpc_get(c.hosts[host].rpc_url, "blockchain", {"minHeight": lo, "maxHeight": hi}, timeout=5.0)
        for meta in metas["block_metas"]:
            out[int(meta["header"]["height"])] = _parse_time(str(meta["header"]["time"]))
        lo = hi + 1
    return out


def _intervals(c: ConsortiumLab, blocks: int, timeout_commit_s: float) -> dict[str, Any]:
    # A few blocks of warm-up: right after a (re)start the peers are still connecting.
    start = max(c.wait_height(1, range(HOSTS), _WAIT_S).values()) + _WARMUP_BLOCKS
    c.wait_height(start + blocks + 1, [0], _WAIT_S + blocks * 5)
    times = block_times(c, 0, start + 1, start + blocks + 1)
    gaps = [times[h + 1] - times[h] for h in range(start + 1, start + blocks + 1)]
    consensus = [g - timeout_commit_s for g in gaps]
    return {"blocks": len(gaps), "from_height": start + 1,
            "interval_p50_s": round(percentile(gaps, 0.5), 4), "interval_p95_s": round(percentile(gaps, 0.95), 4),
            "interval_mean_s": round(statistics.fmean(gaps), 4), "interval_max_s": round(max(gaps), 4),
            "consensus_p50_s": round(percentile(consensus, 0.5), 4),
            "consensus_p95_s": round(percentile(consensus, 0.95), 4)}


def _one_partitioned(c: ConsortiumLab, partition_s: float) -> dict[str, Any]:
    cut = HOSTS - 1
    others = list(range(cut))
    before = c.wait_height(1, range(HOSTS), _WAIT_S)
    c.lab.link_down(cut)
    try:
        time.sleep(partition_s)
        during = {i: c.height(i) or 0 for i in others}
    finally:
        c.lab.link_up(cut)
    healed = time.monotonic()
    target = max(during.values())
    c.wait_height(target, [cut], _WAIT_S)
    caught_up_s = time.monotonic() - healed
    same = c.app_hash_after(cut, target - 1) == c.app_hash_after(0, target - 1)
    return {"partition_s": partition_s, "cut_host": c.hosts[cut].org,
            "blocks_committed_by_the_other_3": target - max(before[i] for i in others),
            "cut_host_height_before": before[cut], "target_height": target,
            "catch_up_s": round(caught_up_s, 2), "app_hash_equal_after_catch_up": same}


def _two_partitioned(c: ConsortiumLab, halt_s: float) -> dict[str, Any]:
    c.wait_height(1, range(HOSTS), _WAIT_S)
    cut = (2, 3)
    for i in cut:
        c.lab.link_down(i)
    try:
        time.sleep(3.0)  # a block already under way may still commit
        halted = max(c.height(i) or 0 for i in (0, 1))
        time.sleep(halt_s)
        after = max(c.height(i) or 0 for i in (0, 1))
    finally:
        for i in cut:
            c.lab.link_up(i)
    healed = time.monotonic()
    c.wait_height(after + 1, range(HOSTS), _WAIT_S)
    return {"halt_s": halt_s, "cut_hosts": [c.hosts[i].org for i in cut],
            "blocks_committed_while_split": after - halted, "resume_s": round(time.monotonic() - healed, 2)}


def _relayed_intervals(c: ConsortiumLab, delay_ms: int, jitter_ms: int, blocks: int,
                       timeout_commit_s: float) -> dict[str, Any]:
    """Restart every host with its peers dialled through the other hosts' delaying relays, then measure."""
    import subprocess
    import sys

    relay_port = c.base_port + _RELAY_OFFSET
    for i in range(HOSTS):
        c.stop(i)
    for h in c.hosts:
        c.lab.spawn(h.net.index, [sys.executable, "-m", "fedledger.localnet.delayproxy",
                                  "--listen", f"{h.net.ip}:{relay_port}", "--to", f"127.0.0.1:{c.base_port}",
                                  "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for i in range(HOSTS):
        c.start(i, peer_port=relay_port)
    return _intervals(c, blocks, timeout_commit_s)


def run_faults(partition_s: float = 60.0, halt_s: float = 20.0, delay_ms: int = 50, jitter_ms: int = 10,
               blocks: int = 30, block_time_ms: int = 500, workdir: Path | None = None,
               log: Callable[[str], None] = _quiet) -> dict[str, Any]:
    """Run every scenario on one namespaced consortium; return the figures (see the module docstring)."""
    reason = netns_unavailable_reason()
    if reason is not None:
        raise LocalnetError(f"bench faults needs network namespaces: {reason}")
    result: dict[str, Any] = {"hosts": HOSTS, "block_time_ms": block_time_ms}
    with tempfile.TemporaryDirectory(prefix="fedledger-faults-") as tmp, NetnsLab(HOSTS) as lab:
        c = ConsortiumLab(lab, workdir or Path(tmp), block_time_ms=block_time_ms)
        try:
            t0 = time.monotonic()
            result["genesis_sha256"] = c.ceremony()
            c.wait_height(1, range(HOSTS), _WAIT_S)
            result["ceremony_to_first_block_s"] = round(time.monotonic() - t0, 2)
            log(f"consortium up in {result['ceremony_to_first_block_s']} s; partitioning one host {partition_s} s")
            result["one_partitioned"] = _one_partitioned(c, partition_s)
            log(f"one host: {result['one_partitioned']}; now two of four for {halt_s} s")
            result["two_partitioned"] = _two_partitioned(c, halt_s)
            log(f"two hosts: {result['two_partitioned']}; block intervals on the bare bridge")
            timeout_commit_s = block_time_ms / 1000
            wan: dict[str, Any] = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "bridge": _intervals(c, blocks,
                                                                                                     timeout_commit_s)}
            netem = netem_unavailable_reason()
            if netem is None:
                for i in range(HOSTS):
                    lab.netem(i, delay_ms, jitter_ms)
                wan["netem"] = _intervals(c, blocks, timeout_commit_s)
                wan["emulation"] = "tc netem on every host's eth0 (egress)"
            else:
                wan["netem"] = None
                wan["netem_unavailable"] = netem
                log(f"no netem ({netem}); emulating the WAN with a delaying TCP relay in front of each p2p port")
                wan["relay"] = _relayed_intervals(c, delay_ms, jitter_ms, blocks, timeout_commit_s)
                wan["emulation"] = ("localnet/delayproxy.py: every p2p connection passes one relay that delays "
                                    "each direction by delay ± jitter (uniform, in order)")
            result["wan"] = wan
        finally:
            c.stop_all()
    return result
