"""Store keys of the governance module (parameters, proposals, the tally queue)."""

from __future__ import annotations

__all__ = ["NEXT_DUE_KEY", "NEXT_ID_KEY", "PARAMS_KEY", "QUEUE_PREFIX", "proposal_key", "queue_key",
           "queue_entry"]

PARAMS_KEY = b"gov/params"
# The next proposal id to hand out (ids start at 1).
NEXT_ID_KEY = b"gov/next_id"
# The smallest deadline height among proposals still voting; absent when none is. It lets end_block
# do one read per block instead of a prefix scan.
NEXT_DUE_KEY = b"gov/next_due"
QUEUE_PREFIX = b"gov/queue/"


def proposal_key(proposal_id: int) -> bytes:
    """A proposal record, its votes included; the id is zero-padded so proposals sort by id."""
    return b"gov/proposal/%010d" % proposal_id


def queue_key(deadline: int, proposal_id: int) -> bytes:
    """Tally queue entry: sorts by deadline height, then by proposal id."""
    return QUEUE_PREFIX + b"%010d/%010d" % (deadline, proposal_id)


def queue_entry(key: bytes) -> tuple[int, int]:
    """The (deadline, proposal id) a tally queue key names."""
    deadline, proposal_id = key[len(QUEUE_PREFIX):].split(b"/")
    return int(deadline), int(proposal_id)
