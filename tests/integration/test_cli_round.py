"""A federated round driven through the `fedledger` CLI, as a user would, on a real 4-validator localnet.

Both content stores: the embedded one and a Kubo daemon. In each, one contribution's stored bytes
are overwritten after its commit (in the embedded store's block file; in Kubo's flatfs repo, whose
reads do not re-hash), so the fetched payload no longer hashes to its CID. The aggregator must drop
it, record it in the version's `dropped` list as a hash mismatch, and the chain must debit that
trainer's reputation, and only that trainer's.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fedledger.abci_app.did.credentials import did_of_key
from fedledger.ipfs import open_store
from fedledger.ipfs.cid import parse_cid
from fedledger.ipfs.embedded import EmbeddedStore
from fedledger.localnet import manager
from fedledger.localnet.config import load_spec
from fedledger.sdk.ml.data import load_digits_federated, save_client_data

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

TASK = "digits"
TRAINERS = ("t1", "t2", "t3")
EVALUATORS = ("ev1", "ev2")
DEADLINE_BLOCKS = 150  # ~45 s at 300 ms blocks: DP-SGD clients start slowly on a loaded 2-core machine
EPOCHS = "2"  # enough to produce a real update; keeps three parallel trainings short on a small machine


@dataclass
class Scenario:
    """Round 1 of the task, run through the CLI; what each test checks against."""

    store: str
    net: Any
    cli: Any
    keys: dict[str, str]  # key name -> public key hex
    shards: dict[str, Path]
    shard_sizes: dict[str, int]
    committed: dict[str, dict[str, Any]]  # participant hex -> contribution record before aggregation
    dropped: str  # participant hex whose payload was corrupted in the store
    aggregation: Any  # CliResult of `aggregator run --rounds 1`
    evaluator_metrics_port: int  # the first evaluator serves its Prometheus metrics here
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def included(self) -> list[str]:
        """Participants the aggregator must have included, sorted like the chain sorts them."""
        return sorted(k for k in self.committed if k != self.dropped)


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[phase] = round(time.monotonic() - started, 1)


def _corrupt_embedded_payload(net_home: Path, cid: str) -> Path:
    """Overwrite the block file of ``cid`` in the net's embedded store; return its path."""
    spec = manager.store_spec(net_home)
    assert spec is not None and spec.startswith("embedded:"), spec
    store = open_store(spec)
    assert isinstance(store, EmbeddedStore), store.describe()
    path = store.block_path(cid)
    assert path.is_file(), f"the committed payload {cid} is not where the embedded store keeps it ({path})"
    path.write_bytes(b"these bytes are not the committed update")
    return path


def _corrupt_kubo_payload(net_home: Path, cid: str) -> Path:
    """Flip every byte of ``cid``'s block in the net's Kubo repo (flatfs); return its path."""
    repo = load_spec(net_home).store.ipfs_path
    assert repo is not None, "the localnet has no Kubo repo"
    parsed = parse_cid(cid)
    # A payload of at most 1 MiB is one raw block; flatfs names it by its multihash (sha2-256: 0x12 0x20)
    # in unpadded upper-case base32, sharded by the next-to-last two characters.
    assert parsed.is_raw, f"{cid} is not a single raw block: the update is over 1 MiB"
    key = base64.b32encode(b"\x12\x20" + parsed.digest).decode().rstrip("=")
    path = repo / "blocks" / key[-3:-1] / f"{key}.data"
    assert path.is_file(), f"the committed payload {cid} is not where Kubo's flatfs keeps it ({path})"
    path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))  # same size, other bytes
    return path


def _round_one(store: str, net: Any, cli: Any, work: Path, timings: dict[str, float]) -> Scenario:
    names = ("agg", *TRAINERS, *EVALUATORS)
    with _timed(timings, "keys"):
        for name in names:
            cli.ok("keys", "create", name)
        keys = {name: cli.ok("keys", "show", name).stdout.strip() for name in names}
    with _timed(timings, "register"):
        roles = {"agg": "aggregator", **{e: "evaluator" for e in EVALUATORS}}
        regs = [cli.spawn(f"admit-{n}", "admit", "--key", n, "--role", roles.get(n, "trainer")) for n in names]
        for reg in regs:
            res = reg.finish(timeout=60)
            assert res.rc == 0, res.describe()
        assert cli.json("query", "whois", keys["agg"])["role"] == "aggregator"
    with _timed(timings, "task create"):
        # One-round DP models are weak: the evaluators promote anything that learned something.
        cli.ok("task", "create", "--key", "agg", "--task", TASK, "--aggregator", "agg", "--round-size", "3",
               "--min-contributions", "1", "--deadline-blocks", str(DEADLINE_BLOCKS), "--min-accuracy", "0.05")

    clients, test = load_digits_federated(len(TRAINERS))
    save_client_data(work / "canary.npz", test)
    # Two evaluators (the default quorum) decide each version; they run until the kit stops them. The first
    # serves its metrics (sdk/metrics.py), which test_metrics_follow_the_round scrapes.
    metrics_port = _free_port()
    for e in EVALUATORS:
        extra = ("--metrics-port", str(metrics_port)) if e == EVALUATORS[0] else ()
        cli.spawn(f"evaluator-{e}", "evaluator", "run", "--key", e, "--task", TASK,
                  "--canary", str(work / "canary.npz"), *extra)
    shards: dict[str, Path] = {}
    for name, data in zip(TRAINERS, clients, strict=True):
        shards[name] = work / f"{name}.npz"
        save_client_data(shards[name], data)
    shard_sizes = {name: data.num_examples for name, data in zip(TRAINERS, clients, strict=True)}

    with _timed(timings, "three clients"):
        # Started before the round opens, so their start-up (torch import) overlaps the wait.
        runs = [cli.spawn(f"client-{n}", "client", "run", "--key", n, "--task", TASK, "--data", str(shards[n]),
                          "--rounds", "1", "--epochs", EPOCHS) for n in TRAINERS]
        cli.ok("task", "open-round", "--key", "agg", "--task", TASK)
        for run in runs:
            res = run.finish(timeout=120)
            assert res.rc == 0, res.describe()

    contributions = cli.json("query", "contributions", TASK, "1")
    committed = {c["participant"]: c for c in contributions}
    assert sorted(committed) == sorted(keys[n] for n in TRAINERS), contributions
    for name in TRAINERS:
        rec = committed[keys[name]]
        assert rec["num_examples"] == shard_sizes[name], rec
        assert rec["base_version"] == 0, rec
    rnd = cli.json("query", "round", TASK, "1")
    assert (rnd["status"], rnd["contributions"]) == ("open", 3), rnd
    # How much of the deadline the three clients needed (printed with the timings: the margin left).
    timings["round 1 blocks used"] = max(c["height"] for c in contributions) - rnd["opened_height"]

    dropped = keys[TRAINERS[-1]]
    corrupt = _corrupt_embedded_payload if store == "embedded" else _corrupt_kubo_payload
    corrupt(net.home, committed[dropped]["cid"])

    with _timed(timings, "aggregator round 1"):
        aggregation = cli.run("aggregator", "run", "--key", "agg", "--task", TASK, "--rounds", "1", timeout=120)
    assert aggregation.rc == 0, aggregation.describe()
    return Scenario(store, net, cli, keys, shards, shard_sizes, committed, dropped, aggregation, metrics_port,
                    timings)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=["embedded", "kubo"])
def scenario(request: pytest.FixtureRequest, kit: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    store: str = request.param
    work = tmp_path_factory.mktemp(f"round-{store}")
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        with kit.running_localnet(work / "net", store) as net:
            timings["localnet up"] = round(time.monotonic() - started, 1)
            cli = kit.Cli(work / "client", net.home, work / "logs")
            try:
                yield _round_one(store, net, cli, work, timings)
            finally:
                cli.close()
    finally:
        timings["total"] = round(time.monotonic() - started, 1)
        print(f"\n[{store}] timings (s): {timings}")


def test_round_includes_exactly_the_verified_contributions(scenario: Scenario) -> None:
    lineage = scenario.cli.json("query", "lineage", TASK, "1")
    version = lineage["version"]
    listed = [c["participant"] for c in lineage["contributions"]]
    expected = scenario.included
    assert len(expected) == 2
    assert sorted(listed) == expected, lineage
    assert version["contributors"] == expected, version
    for c in lineage["contributions"]:
        before = scenario.committed[c["participant"]]
        assert (c["cid"], c["sha256"], c["num_examples"]) == (before["cid"], before["sha256"], before["num_examples"])
    assert version["total_examples"] == sum(c["num_examples"] for c in lineage["contributions"])
    by_key = {v: k for k, v in scenario.keys.items()}
    assert version["total_examples"] == sum(scenario.shard_sizes[by_key[k]] for k in expected)
    assert (version["version"], version["round"], version["parent"]) == (1, 1, 0), version
    assert version["proposer"] == scenario.keys["agg"], version
    assert [a["version"] for a in lineage["ancestors"]] == [0], lineage["ancestors"]
    rnd = scenario.cli.json("query", "round", TASK, "1")
    assert (rnd["status"], rnd["version"]) == ("aggregated", 1), rnd


def test_aggregator_reports_what_it_dropped(scenario: Scenario) -> None:
    out = scenario.aggregation
    assert "proposed version 1" in out.stdout, out.describe()
    assert "Traceback" not in out.stderr, out.describe()
    warnings = [line for line in out.stderr.splitlines() if "dropping contribution" in line]
    assert len(warnings) == 1 and scenario.dropped[:16] in warnings[0], out.describe()
    if scenario.store == "embedded":
        assert "corrupt" in warnings[0], out.describe()


def test_the_version_records_the_drop_and_the_chain_penalises_it(scenario: Scenario) -> None:
    version = scenario.cli.json("query", "lineage", TASK, "1")["version"]
    assert version["dropped"] == [{"participant": scenario.dropped, "reason": "hash_mismatch"}], version
    for participant in scenario.committed:
        history = scenario.cli.json("query", "reputation-history", did_of_key(participant))
        penalties = [e for e in history["entries"] if e.get("reason") == "hash_mismatch"]
        if participant == scenario.dropped:
            assert len(penalties) == 1 and penalties[0]["delta"] < 0, history
            assert penalties[0]["score"] < penalties[0]["before"], history
        else:
            assert penalties == [], history


def test_latest_version_and_task_proof(scenario: Scenario) -> None:
    cli = scenario.cli
    latest = cli.json("query", "version", TASK, "latest")
    assert latest == cli.json("query", "lineage", TASK, "1")["version"]
    # The proposed model is really in the store, under the hash the chain recorded.
    payload = open_store(manager.store_spec(scenario.net.home) or "").get(latest["cid"], latest["sha256"])
    assert len(payload) == latest["size"]

    proved = cli.json("query", "task", TASK, "--prove")
    assert proved["proof"]["verified"] is True, proved
    assert proved["answer"]["task_id"] == TASK and proved["answer"]["latest_version"] == 1, proved
    assert proved["proof"]["header_height"] == proved["height"] + 1, proved


def test_a_second_node_recomputes_the_published_version(scenario: Scenario) -> None:
    """`aggregator verify` rebuilds version 1 from the chain's records and the payloads, bit for bit."""
    cli = scenario.cli
    result = cli.json("aggregator", "verify", "--task", TASK, "--version", "1")
    assert result["ok"] is True and result["inputs"] == len(scenario.included), result
    assert result["recomputed_sha256"] == cli.json("query", "version", TASK, "1")["sha256"]
    refused = cli.run("aggregator", "verify", "--task", TASK, "--version", "0")
    assert refused.rc != 0 and "initial model" in refused.stderr and "Traceback" not in refused.stderr, \
        refused.describe()


def test_restarted_aggregator_resumes_from_chain_state(scenario: Scenario) -> None:
    cli = scenario.cli
    timings = scenario.timings
    agg_args = ("aggregator", "run", "--key", "agg", "--task", TASK, "--rounds", "2")
    started = time.monotonic()

    metrics_port = _free_port()
    first = cli.spawn("aggregator-first", *agg_args, "--metrics-port", str(metrics_port))
    deadline = time.monotonic() + 60
    while cli.json("query", "task", TASK)["current_round"] != 2:
        assert first.proc.poll() is None, first.result().describe()
        assert time.monotonic() < deadline, f"round 2 was not opened:\n{first.result().describe()}"
        time.sleep(0.2)
    # The live aggregator's own endpoint: it counted the round it opened and the tx that opened it.
    from tests.integration.test_metrics_localnet import scrape

    opened = 'fedledger_node_steps_total{action="opened_round",service="aggregator"}'
    while (agg_metrics := scrape(metrics_port)).get(opened, 0.0) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert agg_metrics.get(opened) == 1, sorted(k for k in agg_metrics if k.startswith("fedledger_"))
    assert agg_metrics['fedledger_tx_latency_seconds_count{result="OK",type="open_round"}'] == 1
    os.kill(first.proc.pid, signal.SIGTERM)
    first.finish(timeout=20)
    before = cli.json("query", "round", TASK, "2")
    assert (before["status"], before["contributions"], before["base_version"]) == ("open", 0, 1), before

    trainer = TRAINERS[0]
    second = cli.spawn("aggregator-restarted", *agg_args)
    client = cli.spawn("client-round2", "client", "run", "--key", trainer, "--task", TASK,
                       "--data", str(scenario.shards[trainer]), "--rounds", "1", "--epochs", EPOCHS)
    res = client.finish(timeout=120)
    assert res.rc == 0, res.describe()
    # The round holds 1 of 3 contributions: the aggregator must close it at its deadline.
    out = second.finish(timeout=150)
    timings["restart part"] = round(time.monotonic() - started, 1)
    assert out.rc == 0, out.describe()
    assert "opened round" not in out.stdout, out.describe()
    assert "closed round 2" in out.stdout and "proposed version 2" in out.stdout, out.describe()
    assert "error" not in out.stdout.lower() and "Traceback" not in out.stderr, out.describe()

    versions = cli.json("query", "versions", TASK)
    assert [v["version"] for v in versions] == [0, 1, 2], versions
    after = cli.json("query", "round", TASK, "2")
    assert after["opened_height"] == before["opened_height"], (before, after)
    assert (after["status"], after["version"], after["contributions"]) == ("aggregated", 2, 1), after
    assert after["closed_height"] > after["deadline_height"], after
    v2 = versions[2]
    assert (v2["round"], v2["parent"], v2["contributors"]) == (2, 1, [scenario.keys[trainer]]), v2
    assert v2["total_examples"] == scenario.shard_sizes[trainer], v2
    task = cli.json("query", "task", TASK)
    assert (task["current_round"], task["latest_version"]) == (2, 2), task


def test_metrics_follow_the_round(scenario: Scenario) -> None:
    """The app's endpoint counts the round's commitments and its close; the evaluator's its fetches and steps."""
    from fedledger.localnet.config import load_spec
    from tests.integration.test_metrics_localnet import scrape

    app = scrape(load_spec(scenario.net.home).nodes[0].app_metrics_port)
    # Every contribution the chain holds, in every round so far (other tests of the module run more rounds).
    held, number = 0, 1
    while (found := scenario.cli.run("query", "round", TASK, str(number), "--json")).rc == 0:
        held += int(json.loads(found.stdout)["contributions"])
        number += 1
    assert number > 1 and held >= len(TRAINERS)
    assert app['fedledger_app_commitments_total{reason="OK",result="accepted",stage="block"}'] == held
    assert app['fedledger_app_rounds_total{event="opened",status="open"}'] >= 1
    assert sum(v for k, v in app.items() if k.startswith('fedledger_app_rounds_total{event="closed"')) >= 1
    assert app[f'fedledger_app_epsilon_spent_total{{task="{TASK}"}}'] > 0
    assert app["fedledger_app_round_duration_blocks_count"] >= 1
    deadline = time.monotonic() + 120
    while True:  # the evaluator attests version 1 on its own schedule
        ev = scrape(scenario.evaluator_metrics_port)
        attested = ev.get('fedledger_node_steps_total{action="attested",service="evaluator"}', 0.0)
        if attested >= 1 or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert attested >= 1, sorted(k for k in ev if k.startswith("fedledger_"))
    assert ev['fedledger_store_fetch_seconds_count{result="ok"}'] >= 1  # the version's payload
    assert ev['fedledger_tx_latency_seconds_count{result="OK",type="attest_version"}'] >= 1
