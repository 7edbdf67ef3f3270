import json
import math
import sys

import pytest
from click.testing import CliRunner

from fedledger.bench.cli import bench
from fedledger.bench.round import FEDLEDGER_CONFIG, bench_round, flower_available, ratio, round_figures, summarize


def test_ratio_math() -> None:
    assert ratio(2.0, 4.0) == 0.5
    assert ratio(3.0, 1.0) == 3.0
    assert ratio(1.0, 3.0) == 0.333
    assert ratio(None, 1.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None
    assert ratio(math.nan, 1.0) is None


def test_round_figures_leave_round_one_out_of_the_steady_mean() -> None:
    fig = round_figures([0.0, 10.0, 20.0], [5.0, 11.0, 23.0])
    assert fig["round_s"] == [5.0, 1.0, 3.0]
    assert fig["mean_round_s"] == 3.0
    assert fig["steady_round_s"] == 2.0
    assert round_figures([1.0], [3.0])["steady_round_s"] == 2.0  # one round: that round
    assert round_figures([], [])["mean_round_s"] is None
    with pytest.raises(ValueError, match="starts"):
        round_figures([0.0], [])


def test_summary_shape() -> None:
    out = summarize(FEDLEDGER_CONFIG, {"mean_round_s": 1.5}, {"steady_round_s": 0.5, "mean_round_s": 2.0},
                    {"self_max_rss_mib": 1.0})
    assert set(out) == {"benchmark", "config", "fedledger", "flower", "ratio_fedledger_over_flower", "ratio_basis",
                        "memory"}
    assert out["benchmark"] == "round"
    assert out["ratio_fedledger_over_flower"] == 3.0
    assert summarize({}, {"error": "x"}, {"error": "y"}, {})["ratio_fedledger_over_flower"] is None


def test_config_is_the_brief() -> None:
    assert (FEDLEDGER_CONFIG["clients"], FEDLEDGER_CONFIG["round_size"], FEDLEDGER_CONFIG["seeds"]) == (1000, 100, [1])
    assert FEDLEDGER_CONFIG["methods"] == ["fedledger"]


def test_a_refused_key_is_reported_not_raised() -> None:
    out = bench_round({"no_such_knob": 1}, flower=True)
    assert "parse_config refused" in out["fedledger"]["error"] and "no_such_knob" in out["fedledger"]["error"]
    assert out["flower"]["error"].startswith("not run")
    assert out["ratio_fedledger_over_flower"] is None
    assert out["memory"]["self_max_rss_mib"] > 0


def test_missing_flower_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flwr", None)
    assert flower_available() is None


@pytest.mark.timeout(120)
def test_whole_command_small() -> None:
    # The one end-to-end run, sized to stay well under a minute: 1 round of 25 of 30 disjoint-shard clients
    # (5 SecAgg groups of 5: the median with 2 assumed Byzantine groups needs 5), and Flower's Ray simulation
    # when flwr[simulation] is installed.
    res = CliRunner().invoke(bench, ["round", "--clients", "30", "--round-size", "25", "--rounds", "1",
                                     "--client-examples", "0", "--cpus", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "client_examples" not in out["config"]
    assert out["fedledger"]["mean_round_s"] > 0 and out["fedledger"]["successful_rounds"] == 1.0
    if flower_available() is None:
        assert "pip install" in out["flower"]["error"]
        return
    assert len(out["flower"]["round_s"]) == 1
    fed, flower = out["fedledger"]["mean_round_s"], out["flower"]["steady_round_s"]
    assert out["ratio_fedledger_over_flower"] == ratio(fed, flower)
    assert out["memory"]["ray_tree_peak_rss_mib"] >= out["memory"]["self_max_rss_mib"] * 0.5
