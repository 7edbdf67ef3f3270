"""Admission on chain: valid and forged, expired, revoked, wrong-issuer, wrong-role VCs; caps; key rotation."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.identity.msgs import rotation_message
from fedledger.abci_app.store import CommittedStore
from tests.support import ISSUER, ORG, Chain, Signer, credential

ROLES_LIMITED = canonical_bytes({"identity": {"organizations": [{
    "id": ORG, "issuers": [did_from_private_key(ISSUER)], "enrollment_cap": 2, "roles": ["trainer"]}]}})


def codes(results: list[Any]) -> list[int]:
    return [r.code for r in results]


def member(chain: Chain, did: str) -> Any:
    res = chain.sm.query(f"/member/{did}", b"", False)
    return json.loads(res.value) if res.code == 0 else None


def test_valid_credential_admits_and_binds_key(chain: Chain) -> None:
    s = Signer(1)
    results = chain.ok(s.admit("trainer", tasks=["digits"]))
    did = did_from_private_key(s.key)
    assert ("did", did) in results[0].events[0].attributes
    rec = member(chain, did)
    assert rec["role"] == "trainer" and rec["organization"] == ORG and rec["tasks"] == ["digits"]
    assert json.loads(chain.sm.query(f"/whois/{s.hex}", b"", False).value)["did"] == did
    assert codes(chain.block(s.admit("trainer"))) == [Code.ALREADY_EXISTS]


def test_forged_credential_is_rejected_without_state_change(chain: Chain) -> None:
    s = Signer(2)
    vc = credential(s.key, "trainer")
    forged = copy.deepcopy(vc)
    forged["credentialSubject"]["role"] = "aggregator"  # claim changed after signing
    before = chain.sm.app_hash
    assert codes(chain.block(s.tx("admit", {"credential": forged}))) == [Code.CREDENTIAL_INVALID]
    assert member(chain, did_from_private_key(s.key)) is None
    assert chain.sm.app_hash != before  # only the nonce moved
    assert chain.store.get(b"id/member/" + did_from_private_key(s.key).encode()) is None


def test_expired_and_not_yet_valid(chain: Chain) -> None:
    s = Signer(3)
    chain.ok(), chain.ok(), chain.ok()  # block time is the height in seconds since 1970
    expired = credential(s.key, "trainer", valid_until="1970-01-01T00:00:02Z")
    assert codes(chain.block(s.tx("admit", {"credential": expired}))) == [Code.CREDENTIAL_EXPIRED]
    future = credential(s.key, "trainer", valid_from="2099-01-01T00:00:00Z")
    assert codes(chain.block(s.tx("admit", {"credential": future}))) == [Code.CREDENTIAL_EXPIRED]


def test_wrong_issuer_wrong_subject_unknown_org(chain: Chain) -> None:
    s, other, rogue = Signer(4), Signer(5), Signer(6)
    by_rogue = credential(s.key, "trainer", issuer=rogue.key)
    assert codes(chain.block(s.tx("admit", {"credential": by_rogue}))) == [Code.CREDENTIAL_INVALID]
    someone_elses = credential(other.key, "trainer")
    assert codes(chain.block(s.tx("admit", {"credential": someone_elses}))) == [Code.UNAUTHORIZED]
    no_org = credential(s.key, "trainer", org="nope")
    assert codes(chain.block(s.tx("admit", {"credential": no_org}))) == [Code.NOT_FOUND]


def test_wrong_role_and_enrollment_cap() -> None:
    chain = Chain(CommittedStore(":memory:"), app_state=ROLES_LIMITED)
    a, b, c = Signer(7), Signer(8), Signer(9)
    assert codes(chain.block(a.admit("aggregator"))) == [Code.CREDENTIAL_INVALID]  # org grants trainer only
    chain.ok(a.admit("trainer"), b.admit("trainer"))
    assert codes(chain.block(c.admit("trainer"))) == [Code.ORG_CAP]  # a Sybil third enrollment


def test_revocation_blocks_admission_and_suspends_holder(chain: Chain) -> None:
    s, t = Signer(10), Signer(11)
    issuer = Signer.__new__(Signer)
    issuer.key, issuer.nonce = ISSUER, 0
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    issuer.hex = ISSUER.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    chain.ok(s.admit("trainer", cred_id="urn:test:s"))
    assert codes(chain.block(t.tx("revoke_credential", {"organization": ORG, "credential_id": "urn:test:s"}))) \
        == [Code.UNAUTHORIZED]  # only an issuer of the org may revoke
    chain.ok(issuer.tx("revoke_credential", {"organization": ORG, "credential_id": "urn:test:s"}))
    assert member(chain, did_from_private_key(s.key))["status"] == "revoked"
    chain.ok(issuer.tx("revoke_credential", {"organization": ORG, "credential_id": "urn:test:t"}))
    assert codes(chain.block(t.admit("trainer", cred_id="urn:test:t"))) == [Code.CREDENTIAL_REVOKED]


def test_key_rotation_moves_rights(chain: Chain) -> None:
    s, new = Signer(12), Signer(13)
    chain.ok(s.admit("trainer"))
    did = did_from_private_key(s.key)
    bad = s.tx("rotate_key", {"new_key": new.hex, "proof": "00" * 64})
    assert codes(chain.block(bad)) == [Code.BAD_SIGNATURE]
    proof = new.key.sign(rotation_message(did, s.hex, new.hex)).hex()
    chain.ok(s.tx("rotate_key", {"new_key": new.hex, "proof": proof}))
    assert member(chain, did)["key"] == new.hex
    assert chain.sm.query(f"/whois/{s.hex}", b"", False).code == Code.QUERY_NOT_FOUND


@pytest.mark.parametrize("body", [{}, {"credential": "x"}, {"credential": {}, "extra": 1}])
def test_malformed_admit_bodies(chain: Chain, body: dict[str, Any]) -> None:
    res = chain.block(Signer(14).tx("admit", body))
    assert codes(res) in ([Code.INVALID_BODY], [Code.CREDENTIAL_INVALID])


def test_genesis_with_an_unknown_section_halts() -> None:
    with pytest.raises(RuntimeError, match="sections for no module"):
        Chain(CommittedStore(":memory:"), app_state=b'{"identiti":{}}')
    with pytest.raises(ValueError, match="enrollment_cap"):
        Chain(CommittedStore(":memory:"), app_state=canonical_bytes({"identity": {"organizations": [{
            "id": "x", "issuers": [did_from_private_key(ISSUER)], "enrollment_cap": 0}]}}))
