"""`fedledger experiment` refuses bad invocations with a clear message, before starting anything."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fedledger.abci_app.errors import EXIT_STATUS, Family
from fedledger.apps.experiment.cli import experiment


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_sybil_on_the_localnet_is_refused_before_any_net_starts(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 'dataset = "digits"\nclients = 4\nround_size = 4\nrounds = 1\nseeds = [1]\n'
                            'methods = ["fedledger"]\nattacks = ["sybil"]\ngroup_size = 1\n')
    home = tmp_path / "net"
    res = CliRunner().invoke(experiment, ["run", str(cfg), "--mode", "localnet", "--home", str(home)])
    assert res.exit_code == EXIT_STATUS[Family.CONFIG]
    assert "sybil attack runs in the fast mode only" in res.output
    assert not home.exists()  # refused before a localnet was generated


def test_a_screened_config_on_the_localnet_is_refused_before_any_net_starts(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 'dataset = "digits"\nclients = 4\nround_size = 4\nrounds = 1\nseeds = [1]\n'
                            'methods = ["fedledger"]\nattacks = ["none"]\nrule = "fedavg"\ngroup_size = 4\n'
                            'screen = true\n')
    home = tmp_path / "net"
    res = CliRunner().invoke(experiment, ["run", str(cfg), "--mode", "localnet", "--home", str(home)])
    assert res.exit_code == EXIT_STATUS[Family.CONFIG]
    assert "do not post or check the input screen" in res.output
    assert not home.exists()


def test_the_new_defense_and_attack_fields_are_checked(tmp_path: Path) -> None:
    cases = {
        'backdoor_trigger = "stars"\n': "config field 'backdoor_trigger' must be one of",
        'backdoor_location = "middle"\n': "config field 'backdoor_location' must be one of",
        'backdoor_target = -1\n': "config field 'backdoor_target' must be",
        'dp_mode = "local"\n': "config field 'dp_mode' must be one of",
        'noise_quorum_pct = 0\n': "config field 'noise_quorum_pct' must be",
        'screen = 1\n': "config field 'screen' must be true or false",
        'client_examples = -3\n': "config field 'client_examples' must be",
        'robust_baseline_rule = "fedavg"\n': "config field 'robust_baseline_rule' must be",
    }
    for body, words in cases.items():
        res = CliRunner().invoke(experiment, ["run", str(_config(tmp_path, body)), "--engine", "inline"])
        assert res.exit_code == EXIT_STATUS[Family.CONFIG] and words in res.output, (body, res.output)


def test_bad_configs_name_the_problem(tmp_path: Path) -> None:
    cases = {
        'dataset = "cifar"\n': "config field 'dataset' must be one of",
        'clients = 3\nround_size = 4\n': "config field 'round_size' must be at most clients",
        'bogus = 1\n': "unknown config fields ['bogus']",
        'noise_multiplier = 1.0\n': "must be a decimal string",
        'dataset = "basic_motions"\nclients = 20\nround_size = 20\ngroup_size = 1\nrounds = 1\nseeds = [1]\n':
            "20 clients need at least 80 training examples",
        'dataset = "digits"\nattacks = ["backdoor"]\ngroup_size = 1\nrounds = 1\nseeds = [1]\nclients = 4\n'
        'round_size = 4\nmethods = ["fedavg"]\n': None,  # a valid config runs
    }
    for body, message in cases.items():
        res = CliRunner().invoke(experiment, ["run", str(_config(tmp_path, body)), "--output", str(tmp_path / "o")])
        if message is None:
            assert res.exit_code == 0, res.output
        else:
            assert res.exit_code == EXIT_STATUS[Family.CONFIG] and message in res.output, (body, res.output)
