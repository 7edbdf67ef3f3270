"""The genesis ceremony: host cards, genesis assembly and its hash, `node init|start` and their clear errors."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.store import CommittedStore
from fedledger.localnet.card import HostCard, load_card, parse_card, parse_p2p_address, sign_card, validator_address
from fedledger.localnet.ceremony import (
    assemble_genesis,
    check_genesis_hash,
    cometbft_template,
    genesis_hash,
    genesis_text,
)
from fedledger.localnet.config import NETSPEC_FILE, load_spec
from fedledger.localnet.errors import (
    BinaryError,
    CardError,
    GenesisAssemblyError,
    GenesisHashMismatchError,
    HostNotInitializedError,
    LocalnetError,
    PortInUseError,
)
from fedledger.localnet.hostinit import CARD_FILE, ISSUER_KEY_FILE, init_host, load_host
from fedledger.localnet.hoststart import host_spec, parse_peers, render_host_config, start_host
from fedledger.localnet.ports import find_free_base_port
from tests.support import Chain, find_cometbft

TEMPLATE: dict[str, Any] = {"consensus_params": {"block": {"max_bytes": "22020096", "max_gas": "-1"},
                                                 "evidence": {"max_age_num_blocks": "100000"},
                                                 "validator": {"pub_key_types": ["ed25519"]}}}


def make_card(org: str, *, node_id: str | None = None, host: str | None = "10.0.0.2", port: int = 26600,
              issuer: Ed25519PrivateKey | None = None, validator: Ed25519PrivateKey | None = None) -> HostCard:
    nid = node_id or os.urandom(20).hex()
    return sign_card(org, org.title(), issuer or Ed25519PrivateKey.generate(),
                     validator or Ed25519PrivateKey.generate(), nid, f"{nid}@{host}:{port}" if host else None)


@pytest.fixture(scope="module")
def cometbft() -> Path:
    found = find_cometbft()
    if found is None:
        pytest.skip("no pinned cometbft binary (set COMETBFT_BIN or run `make binaries`)")
    return found


# ----------------------------------------------------------------------------- cards


def test_a_card_round_trips_and_holds_no_private_key() -> None:
    issuer, validator = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    card = make_card("hospital-a", issuer=issuer, validator=validator)
    assert parse_card(json.loads(json.dumps(card.to_dict())), "t") == card
    raw_pub = base64.b64decode(card.validator_pub_key)
    assert raw_pub == validator.public_key().public_bytes_raw()
    assert card.validator_address == validator_address(card.validator_pub_key) and len(card.validator_address) == 40
    text = json.dumps(card.to_dict())
    for secret in (issuer.private_bytes_raw(), validator.private_bytes_raw()):
        assert secret.hex() not in text and base64.b64encode(secret).decode() not in text


@pytest.mark.parametrize(("field", "value", "message"), [
    ("org", "Hospital A", "organization id"),
    ("org", "other", "issuer signature does not verify"),
    ("name", "Someone else", "issuer signature does not verify"),
    ("node_id", "xyz", "node_id must be 40"),
    ("validator_address", "00" * 20, "not the address of validator_pub_key"),
    ("validator_pub_key", "not base64!", "not base64"),
    ("issuer_did", "did:web:example.com", "did:key"),
    ("p2p_address", "nohost", "NODE_ID@HOST:PORT"),
    ("version", 2, "card version"),
    ("issuer_signature", base64.b64encode(b"\0" * 64).decode(), "issuer signature does not verify"),
])
def test_a_bad_card_is_refused_with_a_reason(field: str, value: Any, message: str) -> None:
    data = make_card("hospital-a").to_dict()
    data[field] = value
    with pytest.raises(CardError, match=message):
        parse_card(data, "card.json")


def test_a_card_signed_by_someone_else_s_validator_key_does_not_verify() -> None:
    mine, theirs = make_card("alpha"), make_card("beta")
    forged = dict(mine.to_dict(), validator_pub_key=theirs.validator_pub_key,
                  validator_address=theirs.validator_address)
    with pytest.raises(CardError, match="signature does not verify"):
        parse_card(forged, "forged")


def test_card_files_missing_unknown_fields_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="does not exist"):
        load_card(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CardError, match="not readable JSON"):
        load_card(tmp_path / "bad.json")
    (tmp_path / "extra.json").write_text(json.dumps(dict(make_card("a").to_dict(), secret="x")))
    with pytest.raises(CardError, match="unknown fields"):
        load_card(tmp_path / "extra.json")
    with pytest.raises(CardError, match="JSON object"):
        parse_card([1], "list")


@pytest.mark.parametrize("text", ["abc@h:1", f"{'a' * 40}@:1", f"{'a' * 40}@h:0", f"{'a' * 40}@h:x", "a@b@c:1"])
def test_p2p_addresses_are_checked(text: str) -> None:
    with pytest.raises(CardError):
        parse_p2p_address(text)
    assert parse_p2p_address(f"{'a' * 40}@10.1.2.3:26600") == ("a" * 40, "10.1.2.3", 26600)


# ----------------------------------------------------------------------------- genesis


def test_assembly_is_deterministic_and_independent_of_card_order() -> None:
    cards = [make_card(o) for o in ("gamma", "alpha", "beta")]
    a = genesis_text(assemble_genesis(cards, TEMPLATE, chain_id="c1"))
    b = genesis_text(assemble_genesis(list(reversed(cards)), TEMPLATE, chain_id="c1"))
    assert a == b
    doc = json.loads(a)
    assert [v["name"] for v in doc["validators"]] == ["alpha", "beta", "gamma"]
    assert [v["pub_key"]["value"] for v in doc["validators"]] == [c.validator_pub_key for c in sorted(
        cards, key=lambda c: c.org)]
    orgs = doc["app_state"]["identity"]["organizations"]
    assert [(o["id"], o["issuers"], o["admins"]) for o in orgs] == [
        (c.org, [c.issuer_did], [c.issuer_did]) for c in sorted(cards, key=lambda c: c.org)]
    assert doc["chain_id"] == "c1" and doc["consensus_params"]["block"]["max_bytes"] == str(1 << 20)
    # A different option is a different genesis, so a different hash.
    assert genesis_hash(a.encode()) != genesis_hash(
        genesis_text(assemble_genesis(cards, TEMPLATE, chain_id="c1", enrollment_cap=7)).encode())


def test_the_assembled_genesis_is_accepted_by_the_state_machine() -> None:
    cards = [make_card(o) for o in ("alpha", "beta")]
    doc = assemble_genesis(cards, TEMPLATE, enrollment_cap=5, roles=["trainer", "evaluator"])
    chain = Chain(CommittedStore(":memory:"), app_state=json.dumps(doc["app_state"]).encode())
    chain.ok()  # the genesis state is committed with the first block
    for card in cards:
        answer = chain.sm.query(f"/org/{card.org}", b"", False)
        assert answer.code == 0, answer.log
        org = json.loads(answer.value)
        assert (org["enrollment_cap"], org["issuers"], org["roles"]) == (5, [card.issuer_did], ["evaluator", "trainer"])


def _dup(field: str) -> list[HostCard]:
    issuer, validator = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    nid = os.urandom(20).hex()
    first = make_card("alpha", issuer=issuer, validator=validator, node_id=nid)
    second = {
        "org": make_card("alpha"),
        "validator key": make_card("beta", validator=validator),
        "node id": make_card("beta", node_id=nid),
        "issuer DID": make_card("beta", issuer=issuer),
    }[field]
    return [first, second]


@pytest.mark.parametrize("field", ["org", "validator key", "node id", "issuer DID"])
def test_duplicates_are_refused(field: str) -> None:
    with pytest.raises(GenesisAssemblyError, match=f"{'organization' if field == 'org' else field} .* appears in two"):
        assemble_genesis(_dup(field), TEMPLATE)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"chain_id": "bad chain"}, "chain id"), ({"genesis_time": "yesterday"}, "genesis time"),
    ({"enrollment_cap": 0}, "enrollment cap"), ({"roles": ["pilot"]}, "not roles"),
])
def test_bad_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(GenesisAssemblyError, match=message):
        assemble_genesis([make_card("alpha")], TEMPLATE, **kwargs)
    with pytest.raises(GenesisAssemblyError, match="at least one card"):
        assemble_genesis([], TEMPLATE)


def test_the_genesis_hash_check() -> None:
    data = b'{"x": 1}\n'
    sha = genesis_hash(data)
    assert check_genesis_hash(data, sha.upper(), "g") == sha
    with pytest.raises(GenesisHashMismatchError, match="do not start on it"):
        check_genesis_hash(data + b" ", sha, "g")
    with pytest.raises(GenesisAssemblyError, match="64 hex digits"):
        check_genesis_hash(data, "abc", "g")


# ----------------------------------------------------------------------------- node init / start


@pytest.fixture
def host(tmp_path: Path, cometbft: Path) -> Path:
    home = tmp_path / "alpha"
    init_host(home, "alpha", host="10.9.0.2", base_port=find_free_base_port(10), cometbft_bin=cometbft)
    return home


def test_init_makes_own_keys_and_a_card_and_refuses_to_run_twice(host: Path, cometbft: Path) -> None:
    card = load_card(host / CARD_FILE)
    cfg = load_host(host)
    assert card.org == "alpha" and card.p2p_address == f"{card.node_id}@10.9.0.2:{cfg.base_port}"
    assert stat.S_IMODE((host / ISSUER_KEY_FILE).stat().st_mode) == 0o600
    assert cfg.card == card
    with pytest.raises(LocalnetError, match="already holds a host"):
        init_host(host, "alpha", cometbft_bin=cometbft)


def test_init_errors(tmp_path: Path, cometbft: Path) -> None:
    with pytest.raises(BinaryError, match="does not exist"):
        init_host(tmp_path / "a", "alpha", cometbft_bin=tmp_path / "no-cometbft")
    with pytest.raises(CardError, match="organization id"):
        init_host(tmp_path / "b", "Not An Org", cometbft_bin=cometbft)
    assert not (tmp_path / "b").exists()  # nothing made before the id was checked
    with pytest.raises(LocalnetError, match="base port"):
        init_host(tmp_path / "c", "alpha", base_port=80, cometbft_bin=cometbft)


def _genesis_for(tmp_path: Path, cards: list[HostCard], name: str = "genesis.json") -> tuple[Path, str]:
    data = genesis_text(assemble_genesis(cards, TEMPLATE)).encode()
    path = tmp_path / name
    path.write_bytes(data)
    return path, genesis_hash(data)


def test_start_refuses_before_starting_anything(tmp_path: Path, host: Path, cometbft: Path) -> None:
    mine = load_card(host / CARD_FILE)
    genesis, sha = _genesis_for(tmp_path, [mine, make_card("beta")])
    with pytest.raises(HostNotInitializedError, match="does not exist"):
        start_host(tmp_path / "missing", genesis, sha, [], cometbft_bin=cometbft)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HostNotInitializedError, match="node init"):
        start_host(tmp_path / "empty", genesis, sha, [], cometbft_bin=cometbft)
    with pytest.raises(GenesisHashMismatchError):
        start_host(host, genesis, "0" * 64, [], cometbft_bin=cometbft)
    with pytest.raises(BinaryError):
        start_host(host, genesis, sha, [], cometbft_bin=tmp_path / "no-cometbft")
    with pytest.raises(CardError, match="NODE_ID@HOST:PORT"):
        start_host(host, genesis, sha, ["not-a-peer"], cometbft_bin=cometbft)
    other, other_sha = _genesis_for(tmp_path, [make_card("beta"), make_card("gamma")], "other.json")
    with pytest.raises(GenesisAssemblyError, match="does not list this host's validator"):
        start_host(host, other, other_sha, [], cometbft_bin=cometbft)
    assert not (host / NETSPEC_FILE).exists()


def test_start_refuses_a_taken_port(tmp_path: Path, host: Path, cometbft: Path) -> None:
    genesis, sha = _genesis_for(tmp_path, [load_card(host / CARD_FILE)])
    port = load_host(host).base_port + 1  # the RPC port
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        with pytest.raises(PortInUseError, match=f"port {port} \\(alpha rpc\\)"):
            start_host(host, genesis, sha, [], cometbft_bin=cometbft)


def test_host_config_listens_for_peers_and_names_them(host: Path) -> None:
    cfg = load_host(host)
    genesis = assemble_genesis([cfg.card, make_card("beta")], TEMPLATE)
    spec = host_spec(cfg, genesis, 700)
    peer = f"{'b' * 40}@10.9.0.3:26600"
    assert parse_peers([f"{peer},{cfg.card.p2p_address}", peer, " "], cfg.card.node_id) == [peer]
    text = render_host_config((cfg.cometbft_home / "config" / "config.toml").read_text(), spec, cfg, [peer],
                              "0.0.0.0")
    import tomllib

    conf = tomllib.loads(text)
    assert conf["p2p"]["laddr"] == f"tcp://0.0.0.0:{cfg.base_port}"
    assert conf["p2p"]["external_address"] == f"10.9.0.2:{cfg.base_port}"
    assert conf["p2p"]["persistent_peers"] == peer
    assert conf["rpc"]["laddr"] == f"tcp://0.0.0.0:{cfg.base_port + 1}"
    assert conf["proxy_app"] == f"tcp://127.0.0.1:{cfg.base_port + 2}"  # the app stays on loopback
    assert conf["consensus"]["timeout_commit"] == "700ms"
    assert spec.nodes[0].dir == cfg.home and spec.chain_id == genesis["chain_id"]


def test_the_host_spec_round_trips_as_a_one_node_net(host: Path) -> None:
    cfg = load_host(host)
    spec = host_spec(cfg, assemble_genesis([cfg.card], TEMPLATE), 1000)
    spec.save()
    assert load_spec(host) == spec


def test_cometbft_template_has_consensus_params(cometbft: Path) -> None:
    assert "block" in cometbft_template(cometbft)["consensus_params"]


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli() -> Iterator[Any]:
    from fedledger.apps.cli import _register_late_commands, cli

    _register_late_commands()
    yield cli


def test_cli_assemble_and_hash(tmp_path: Path, cli: Any, cometbft: Path) -> None:
    paths = []
    for org in ("alpha", "beta"):
        p = tmp_path / f"{org}.json"
        p.write_text(json.dumps(make_card(org).to_dict()))
        paths.append(str(p))
    out = tmp_path / "genesis.json"
    res = CliRunner().invoke(cli, ["genesis", "assemble", *paths, "--out", str(out), "--cometbft", str(cometbft)])
    assert res.exit_code == 0, res.output
    sha = res.output.splitlines()[0]
    assert sha == genesis_hash(out.read_bytes())
    res = CliRunner().invoke(cli, ["genesis", "hash", str(out), "--expect", sha])
    assert res.exit_code == 0 and res.output.strip() == sha
    res = CliRunner().invoke(cli, ["genesis", "hash", str(out), "--expect", "1" * 64])
    assert res.exit_code == 6 and "[GENESIS_HASH_MISMATCH]" in res.output
    res = CliRunner().invoke(cli, ["genesis", "assemble", *paths, "--out", str(out), "--cometbft", str(cometbft)])
    assert res.exit_code == 2 and "--force" in res.output


def test_cli_reports_a_bad_card_and_a_duplicate(tmp_path: Path, cli: Any, cometbft: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(make_card("alpha").to_dict()))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(make_card("beta").to_dict(), name="tampered")))
    res = CliRunner().invoke(cli, ["genesis", "assemble", str(good), str(bad), "--out", str(tmp_path / "g.json")])
    assert res.exit_code == 2 and "[CARD_INVALID]" in res.output and "bad.json" in res.output
    res = CliRunner().invoke(cli, ["genesis", "assemble", str(good), str(good), "--out", str(tmp_path / "g.json")])
    assert res.exit_code == 2 and "[GENESIS_ASSEMBLY]" in res.output and "appears in two cards" in res.output
    res = CliRunner().invoke(cli, ["node", "start", "--home", str(tmp_path / "none"), "--genesis", str(good),
                                   "--genesis-hash", "0" * 64])
    assert res.exit_code == 2 and "[HOST_NOT_INITIALIZED]" in res.output


def test_cli_node_init_prints_the_card(tmp_path: Path, cli: Any, cometbft: Path) -> None:
    home = tmp_path / "h"
    args = ["node", "init", "--org", "alpha", "--home", str(home), "--host", "10.9.0.2", "--cometbft", str(cometbft)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output[:res.output.rindex("}") + 1])
    assert parse_card(printed, "stdout") == load_card(home / CARD_FILE)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 7 and "already holds a host" in res.output
    res = CliRunner().invoke(cli, ["node", "init", "--org", "beta", "--home", str(tmp_path / "b"),
                                   "--cometbft", str(tmp_path / "missing")])
    assert res.exit_code == 7 and "[BINARY]" in res.output


# ----------------------------------------------------------------------------- localnet up --ceremony


def test_a_localnet_generated_by_the_ceremony(tmp_path: Path, cometbft: Path) -> None:
    import tomllib

    from fedledger.localnet.ceremony_net import generate_by_ceremony

    home = tmp_path / "net"
    base = find_free_base_port(30)
    spec = generate_by_ceremony(home, 3, "cer-net", base, 400, cometbft)
    assert load_spec(home) == spec
    texts = {(n.cometbft_home / "config" / "genesis.json").read_text() for n in spec.nodes}
    assert len(texts) == 1
    genesis = json.loads(texts.pop())
    cards = [load_card(n.dir / CARD_FILE) for n in spec.nodes]
    assert [o["id"] for o in genesis["app_state"]["identity"]["organizations"]] == ["org0", "org1", "org2"]
    assert [v["pub_key"]["value"] for v in genesis["validators"]] == [c.validator_pub_key for c in cards]
    assert [n.node_id for n in spec.nodes] == [c.node_id for c in cards]
    assert len({(n.dir / ISSUER_KEY_FILE).read_text() for n in spec.nodes}) == 3  # no shared issuer
    assert not (home / ISSUER_KEY_FILE).exists()
    conf = tomllib.loads((spec.nodes[1].cometbft_home / "config" / "config.toml").read_text())
    assert conf["p2p"]["laddr"] == f"tcp://127.0.0.1:{base + 10}"
    assert set(conf["p2p"]["persistent_peers"].split(",")) == {spec.nodes[0].p2p_address, spec.nodes[2].p2p_address}
    with pytest.raises(LocalnetError, match="already holds"):
        generate_by_ceremony(home, 3, "cer-net", base, 400, cometbft)
    with pytest.raises(LocalnetError, match="kvstore"):
        generate_by_ceremony(tmp_path / "kv", 1, "c", base, 400, cometbft, app="kvstore")
