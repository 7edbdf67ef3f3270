"""`fedledger experiment`: run an experiment config in the fast in-process mode and print its table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fedledger.abci_app.errors import FedLedgerError
from fedledger.apps.context import fail
from fedledger.apps.context import report as report_error

if TYPE_CHECKING:
    from fedledger.apps.experiment.paper import PaperPlan, PaperResults
    from fedledger.apps.experiment.pool import TrainPool

__all__ = ["experiment", "make_pool"]


def make_pool(engine: str, ray_address: str | None) -> TrainPool:
    """The training engine a command asked for; a Ray that cannot start is one clear error line."""
    from fedledger.apps.experiment.pool import InlinePool

    if engine == "inline" and ray_address is None:
        return InlinePool()
    from fedledger.apps.experiment.raypool import PoolError, RayPool

    try:
        return RayPool(ray_address)
    except PoolError as exc:
        report_error(exc)


@click.group()
def experiment() -> None:
    """Evaluation harness: FedAvg, FedAvg + DP + SecAgg, FedLedger and centralized, under attacks."""


@experiment.command("run")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for runs.csv and summary.csv (default: the config's `output`).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary rows as JSON instead of a table.")
@click.option("--mode", type=click.Choice(["fast", "localnet"]), default="fast", show_default=True,
              help="fast: the chain's modules in-process; localnet: FedLedger runs on a real CometBFT localnet "
                   "with the content store, aggregator and evaluator services.")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="localnet mode: use the localnet running at HOME (else start a fresh one and stop it after).")
@click.option("--store", type=click.Choice(["kubo", "embedded"]), default="kubo", show_default=True,
              help="localnet mode: the content store of a localnet this command starts.")
@click.option("--engine", type=click.Choice(["ray", "inline"]), default="ray", show_default=True,
              help="Where emulated clients train: Ray tasks (a local Ray, or --ray-address), or this process.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Train on an existing Ray cluster (e.g. 127.0.0.1:6379 after `ray start --head`).")
def run(config: Path, output: Path | None, as_json: bool, mode: str, home: Path | None, store: str, engine: str,
        ray_address: str | None) -> None:
    """Run every (seed, attack, method) of CONFIG, print mean ± sd over seeds, write CSV."""
    from fedledger.apps.experiment.config import ExperimentConfigError, load_config
    from fedledger.apps.experiment.fast import run_experiment
    from fedledger.apps.experiment.report import format_table, summarize, write_csv

    try:
        cfg = load_config(config)
    except ExperimentConfigError as exc:
        report_error(exc)
    if mode == "localnet" and (cfg.screen or cfg.dp_mode == "distributed" or "fedledger_nodp" in cfg.methods):
        report_error(ExperimentConfigError(
            "the localnet mode runs FedLedger with dp_mode = \"dpsgd\" and screen = false: the real "
            "SecureParticipant and aggregator do not post or check the input screen's claims yet "
            "(docs/DEFENSE.md); run this config in the fast mode"))
    if mode == "localnet" and "sybil" in cfg.attacks and "fedledger" in cfg.methods:
        report_error(ExperimentConfigError(
            "the sybil attack runs in the fast mode only: it needs an attackers' organization with its own "
            "enrollment cap, which the localnet's development genesis lacks"))
    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    pool = make_pool(engine, ray_address)
    say(f"experiment {cfg.name}: {cfg.dataset}, {cfg.clients} clients, {cfg.rounds} rounds, seeds {list(cfg.seeds)}, "
        f"methods {list(cfg.methods)}, attacks {list(cfg.attacks)} ({cfg.num_byzantine} Byzantine)")
    try:
        if mode == "localnet":
            from fedledger.apps.experiment.fullstack import FullStackError, Localnet
            from fedledger.ipfs import StoreError
            from fedledger.localnet.errors import LocalnetError
            from fedledger.sdk.errors import ClientError

            try:
                with Localnet(home, store, log=say) as net:
                    results = run_experiment(cfg, say, net, pool)
            except (FullStackError, ClientError, LocalnetError, StoreError) as exc:
                fail(f"localnet mode: {exc} [{exc.error_code}]", exc.exit_status)
        else:
            results = run_experiment(cfg, say, pool=pool)
    except FedLedgerError as exc:
        report_error(exc)
    finally:
        pool.close()
    rows = summarize(results)
    runs_csv, summary_csv = write_csv(results, output or Path(cfg.output))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(rows))
    say(f"wrote {runs_csv} and {summary_csv}")


@experiment.command("paper")
@click.option("--quick", is_flag=True, help="A few minutes: fewer clients, rounds, seeds and attacks.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("docs/RESULTS.md"),
              show_default=True, help="The markdown report; CSV files and plots go into a results/ folder beside it.")
@click.option("--engine", type=click.Choice(["ray", "inline"]), default="ray", show_default=True,
              help="Where emulated clients train: Ray tasks (a local Ray, or --ray-address), or this process.")
@click.option("--ray-address", default=None, metavar="ADDR", help="Train on an existing Ray cluster.")
@click.option("--seeds", type=click.IntRange(1, 5), default=None,
              help="Keep only the first N seeds of every experiment (the report says how many ran).")
@click.option("--datasets", default="digits,mnist", show_default=True,
              help="Main data sets to run (comma-separated; digits always runs).")
def paper(quick: bool, output: Path, engine: str, ray_address: str | None, seeds: int | None, datasets: str) -> None:
    """Run the whole suite in the fast mode (data sets, triggers, worse attackers, churn, MIA); write the report."""
    from fedledger.apps.experiment.paper import paper_plan, run_paper, save_paper

    names = tuple(d.strip() for d in datasets.split(",") if d.strip())
    unknown = sorted(set(names) - {"digits", "mnist"})
    if unknown:
        from fedledger.apps.experiment.config import ExperimentConfigError

        report_error(ExperimentConfigError(f"--datasets: unknown data sets {unknown}; the paper's main sets are "
                                           "digits, mnist"))
    plan = paper_plan(quick, seeds, names)
    # The exact command goes into the report, so a reader can rerun it.
    command = "fedledger experiment paper" + (" --quick" if quick else "") + (
        f" --seeds {seeds}" if seeds is not None else "") + (
        f" --datasets {','.join(names)}" if set(names) != {"digits", "mnist"} else "") + (
        f" --output {output}" if output != Path("docs/RESULTS.md") else "")
    for cfg in (*plan.main, *plan.nodp, *plan.triggers, plan.worse, plan.churn, plan.mia):
        click.echo(f"{cfg.name}: {cfg.dataset}, {cfg.clients} clients, {cfg.rounds} rounds, seeds {list(cfg.seeds)}, "
                   f"methods {list(cfg.methods)}, attacks {list(cfg.attacks)}")
    pool = make_pool(engine, ray_address)
    try:
        results = run_paper(plan, click.echo, pool)
    except FedLedgerError as exc:
        report_error(exc)
    finally:
        pool.close()
    results_dir = output.parent / "results"
    saved = save_paper(results_dir / "paper.pickle", plan, results, command)
    click.echo(f"runs saved to {saved} (`fedledger experiment report {saved}` writes the report again)")
    _write_report(plan, results, output, command)


def _write_report(plan: PaperPlan, results: PaperResults, output: Path, command: str) -> None:
    from fedledger.apps.experiment.paper_report import write_paper
    from fedledger.apps.experiment.plots import write_plots

    results_dir = output.parent / "results"
    plots = write_plots(results, plan, results_dir)
    written = write_paper(results, plan, output, results_dir, command, plots)
    click.echo(f"done in {results.seconds:.0f}s; wrote {', '.join(str(p) for p in [*written, *plots])}")


@experiment.command("report")
@click.argument("saved", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("docs/RESULTS.md"),
              show_default=True, help="The markdown report; CSV files and plots go into a results/ folder beside it.")
def report(saved: Path, output: Path) -> None:
    """Write the report of a saved paper run again (its tables, CSV and plots), without rerunning anything."""
    from fedledger.apps.experiment.paper import PaperError, load_paper

    try:
        plan, results, command = load_paper(saved)
    except PaperError as exc:
        report_error(exc)
    _write_report(plan, results, output, command)


@experiment.command("split-inversion")
@click.option("--spec", "spec_name", default="mlp-digits-wide", show_default=True,
              help="The digits model whose cut points are attacked.")
@click.option("--epochs", default=60, show_default=True, help="Decoder training epochs (full batch).")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def split_inversion(spec_name: str, epochs: int, seed: int, as_json: bool) -> None:
    """How well a split stage could rebuild the raw input from what it sees: a decoder per cut point."""
    from dataclasses import asdict

    from fedledger.apps.experiment.inversion import format_inversion_table, inversion_table

    reports = inversion_table(spec_name, epochs=epochs, seed=seed)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        click.echo(format_inversion_table(reports))
