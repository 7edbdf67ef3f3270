"""The loop every node service runs: follow a task's tx events, take one step per wake-up, stop when done.

A service's `step()` decides its next action from chain state alone and returns what it did (a
`fedledger.sdk.steps.Step`); when that was nothing (idle, waiting, an error), the loop
sleeps until the next event for the task or `poll_s`, whichever comes first (a deadline passing
emits no event, hence the poll). A rejection that no retry can fix ends the loop with that error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from fedledger.abci_app.errors import Code
from fedledger.sdk.errors import ClientError, TxRejectedError
from fedledger.sdk.rpc import subscribe
from fedledger.sdk.steps import Action, Step

__all__ = ["PERMANENT", "follow_task"]

log = logging.getLogger("fedledger.node")
PERMANENT = frozenset({Code.UNAUTHORIZED, Code.INVALID_BODY, Code.UNKNOWN_TYPE, Code.WRONG_CHAIN})
async def follow_task(rpc_url: str, task_id: str, step: Callable[[], Step], done: Callable[[], bool],
                      *, poll_s: float = 1.0, on_step: Callable[[Step], None] | None = None,
                      permanent: Collection[int] = PERMANENT) -> None:
    """Run `step` until `done()`: after every event of the task, and at least every `poll_s` seconds."""
    wake = asyncio.Event()

    async def follow() -> None:
        query = f"tm.event='Tx' AND fl.task='{task_id}'"
        while True:
            try:
                async for _ in subscribe(rpc_url, query):
                    wake.set()
            except (ClientError, OSError) as exc:
                log.warning("event subscription lost (%s); polling until it is back", exc)
                await asyncio.sleep(2)

    follower = asyncio.create_task(follow())
    try:
        while not await asyncio.to_thread(done):
            try:
                did = await asyncio.to_thread(step)
            except TxRejectedError as exc:
                if exc.code in permanent:
                    raise  # retrying cannot help: the chain says this key may not do this
                did = Step(Action.ERROR, f"error: {exc}")
                log.warning("%s", did)
            except ClientError as exc:
                did = Step(Action.ERROR, f"error: {exc}")
                log.warning("%s", did)
            if on_step is not None:
                on_step(did)
            if did.quiet:
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout=poll_s)
                except TimeoutError:
                    pass
    finally:
        follower.cancel()
