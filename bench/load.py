"""Closed-loop load generator: broadcast pre-built txs to several nodes and time each until committed.

A tx's latency is from its broadcast_tx_sync call to the moment a block containing it is seen
committed (polling /block as heights advance); throughput is committed txs over the time from
the first broadcast to the last commit. Each block's FinalizeBlock result codes (/block_results)
are tallied too, so a run whose txs were included but refused in execution cannot pass for a
good one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import statistics
import sys
import time
from dataclasses import dataclass

import httpx

__all__ = ["LoadResult", "run_load"]


@dataclass
class LoadResult:
    """Figures of one load run."""

    sent: int
    accepted: int
    committed: int
    rejected_checktx: int
    duration_s: float
    tps: float
    p50_ms: float
    p95_ms: float
    blocks: int
    mean_txs_per_block: float
    result_codes: dict[str, int]  # FinalizeBlock code -> count, over every tx of the blocks seen

    def as_dict(self) -> dict[str, float | int]:
        """JSON form."""
        return dict(self.__dict__)


async def _rpc(client: httpx.AsyncClient, url: str, method: str, **params: str) -> dict[str, object]:
    resp = await client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    payload = resp.json()
    if "error" in payload:
        raise RuntimeError(f"{method}: {payload['error']}")
    result: dict[str, object] = payload["result"]
    return result


async def _load(urls: list[str], lanes: list[list[bytes]], concurrency: int, batch: int,
                rate: float | None, timeout_s: float) -> LoadResult:
    sent_at: dict[str, float] = {}
    committed_at: dict[str, float] = {}
    rejected = 0
    codes: dict[str, int] = {}
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        start_height = int((await _rpc(client, urls[0], "status"))["sync_info"]["latest_block_height"])  # type: ignore[index]
        done_sending = asyncio.Event()
        blocks_seen = 0
        heights: list[int] = []

        async def sender(idx: int) -> None:
            # Each request is a JSON-RPC batch of broadcast_tx_sync calls: per-request HTTP overhead
            # otherwise dominates on a 2-core machine, for either application. A sender owns whole
            # lanes (all txs of some signers) and sends them in order to one node, as a real client
            # does, so no signer's nonces arrive out of order.
            nonlocal rejected
            url = urls[idx % len(urls)]
            mine = [tx for lane in lanes[idx::concurrency] for tx in lane]
            for j, start in enumerate(range(0, len(mine), batch)):
                if rate is not None:
                    # Paced (open-loop) sending: sender idx's j-th batch is due at a fixed offset,
                    # so together the senders offer `rate` tx/s regardless of how fast the chain is.
                    due = t0 + (j * concurrency + idx) * batch / rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                chunk = mine[start:start + batch]
                hashes = [hashlib.sha256(tx).hexdigest().upper() for tx in chunk]
                now = time.monotonic()
                for h in hashes:
                    sent_at[h] = now
                calls = [{"jsonrpc": "2.0", "id": i, "method": "broadcast_tx_sync",
                          "params": {"tx": base64.b64encode(tx).decode()}} for i, tx in enumerate(chunk)]
                resp = await client.post(url, json=calls)
                payload = resp.json()
                if len(chunk) == 1 and isinstance(payload, dict) and payload.get("id") == 0:
                    payload = [payload]  # CometBFT answers a one-call batch with the bare response
                if not isinstance(payload, list):  # the whole batch was refused (e.g. body too large)
                    raise RuntimeError(f"batch of {len(chunk)} refused by {url}: {str(payload)[:300]}")
                for item in payload:
                    result = item.get("result") or {}
                    if "error" in item or int(result.get("code", 0)) != 0:
                        rejected += 1
                        if rejected <= 3:
                            print(f"rejected: {item.get('error') or result.get('log')}", file=sys.stderr)
                        del sent_at[hashes[int(item["id"])]]

        async def watcher() -> None:
            nonlocal blocks_seen
            height = start_height
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                latest = int((await _rpc(client, urls[0], "status"))["sync_info"]["latest_block_height"])  # type: ignore[index]
                while height < latest:
                    height += 1
                    block = await _rpc(client, urls[0], "block", height=str(height))
                    now = time.monotonic()
                    blocks_seen += 1
                    for b64 in block["block"]["data"]["txs"] or []:  # type: ignore[index]
                        committed_at.setdefault(hashlib.sha256(base64.b64decode(b64)).hexdigest().upper(), now)
                    heights.append(height)
                if done_sending.is_set() and all(h in committed_at for h in sent_at):
                    return
                await asyncio.sleep(0.02)

        t0 = time.monotonic()
        watch = asyncio.create_task(watcher())
        await asyncio.gather(*[sender(i) for i in range(concurrency)])
        done_sending.set()
        await watch
        # Result codes are read after the run, off the timed path; the newest height's results can
        # trail its header by a moment, hence the short retry.
        for height in heights:
            for attempt in range(50):
                try:
                    results = await _rpc(client, urls[0], "block_results", height=str(height))
                    break
                except RuntimeError:
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.1)
            txs_results = results.get("txs_results") or []
            assert isinstance(txs_results, list)
            for item in txs_results:
                code = str(int(item.get("code", 0)))
                codes[code] = codes.get(code, 0) + 1
    lat = sorted((committed_at[h] - t) * 1000 for h, t in sent_at.items() if h in committed_at)
    ends = [committed_at[h] for h in sent_at if h in committed_at]
    duration = (max(ends) - t0) if ends else float("nan")
    committed = len(lat)
    return LoadResult(
        sent=sum(map(len, lanes)), accepted=len(sent_at), committed=committed, rejected_checktx=rejected,
        duration_s=round(duration, 3), tps=round(committed / duration, 1) if committed else 0.0,
        p50_ms=round(statistics.median(lat), 1) if lat else float("nan"),
        p95_ms=round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else float("nan"),
        blocks=blocks_seen, mean_txs_per_block=round(committed / blocks_seen, 1) if blocks_seen else 0.0,
        result_codes=codes,
    )


def run_load(urls: list[str], lanes: list[list[bytes]], concurrency: int = 8, batch: int = 20,
             rate: float | None = None, timeout_s: float = 300) -> LoadResult:
    """Send every lane's txs in order and wait until all commit.

    Lanes are spread over `concurrency` senders, each posting batches of `batch` to one node.
    With `rate` None the senders go as fast as the nodes answer (saturation); otherwise they
    offer `rate` tx/s in total (for latency at a given load).
    """
    return asyncio.run(_load(urls, lanes, concurrency, batch, rate, timeout_s))
