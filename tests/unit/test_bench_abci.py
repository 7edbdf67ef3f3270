"""`fedledger bench abci`: its response check catches a wrong server, and a short run against the real server."""

from __future__ import annotations

import pytest

from fedledger.abci_app.errors import ConfigError
from fedledger.abci_app.proto import types as pb
from fedledger.bench.abci_server import _check, bench_abci


def ok() -> pb.Response:
    return pb.Response(check_tx=pb.ResponseCheckTx(code=0))


FLUSH = pb.Response(flush=pb.ResponseFlush())


def test_the_check_accepts_answers_then_flush() -> None:
    _check([ok(), ok(), FLUSH], 2)


@pytest.mark.parametrize("got", [
    [ok(), FLUSH],  # one answer missing
    [ok(), FLUSH, ok()],  # the Flush overtook an answer
    [ok(), pb.Response(check_tx=pb.ResponseCheckTx(code=3)), FLUSH],  # rejected
    [ok(), pb.Response(echo=pb.ResponseEcho(message="x")), FLUSH],  # not a CheckTx answer
])
def test_the_check_rejects_a_wrong_server(got: list[pb.Response]) -> None:
    with pytest.raises(ConfigError):
        _check(got, 2)


def test_a_short_run_against_the_real_server_answers_every_request() -> None:
    result = bench_abci(seconds=0.1, batches=2, batch_size=50)
    # Every pipelined CheckTx was answered and checked; the rates themselves are docs/BENCHMARKS.md's business.
    assert result["pipelined"]["check_txs"] == 100 and result["pipelined"]["batch_size"] == 50
    assert result["sequential"]["round_trips"] >= 1


@pytest.mark.parametrize("args", [(0.0, 1, 1), (1.0, 0, 1), (1.0, 1, 0)])
def test_bad_parameters_are_refused(args: tuple[float, int, int]) -> None:
    with pytest.raises(ConfigError):
        bench_abci(*args)
