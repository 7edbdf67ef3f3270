"""Model payload references ({cid, sha256, size}) and the size limits of federation's messages.

A leaf file: other modules' messages (secagg shares, round references) use ModelRef and the
limits, so it imports nothing of any module's handlers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.modules.federation.records import PayloadRef
from fedledger.abci_app.modules.fields import HEX64, int_field, str_field

__all__ = ["MAX_DEADLINE_BLOCKS", "MAX_PAYLOAD_BYTES", "MAX_ROUND_SIZE", "ModelRef"]

MAX_ROUND_SIZE = 1000
MAX_PAYLOAD_BYTES = 1 << 30
MAX_DEADLINE_BLOCKS = 1_000_000
# A CIDv1 in base32 (multibase prefix 'b'); the chain checks the spelling only, the store the bytes.
_CID_RE = re.compile(r"^b[a-z2-7]{20,120}$")


@dataclass(frozen=True)
class ModelRef:
    """Where a model payload lives and how to check it: CID, sha256 and byte size."""

    cid: str
    sha256: str
    size: int

    @staticmethod
    def parse(body: Mapping[str, Any]) -> ModelRef:
        """Validate the cid/sha256/size fields of a body (an unvalidated tx body, hence Any values)."""
        return ModelRef(
            cid=str_field(body, "cid", _CID_RE, "a CIDv1 in base32 (starting with 'b')"),
            sha256=str_field(body, "sha256", HEX64, "64 lower-case hex digits"),
            size=int_field(body, "size", 1, MAX_PAYLOAD_BYTES),
        )

    def to_json(self) -> PayloadRef:
        """Record form."""
        return {"cid": self.cid, "sha256": self.sha256, "size": self.size}
