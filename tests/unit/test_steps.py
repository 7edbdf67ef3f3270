"""Typed step results: callers branch on the action, people read the sentence."""

from __future__ import annotations

from fedledger.sdk.steps import Action, Step


def test_a_step_prints_its_sentence_and_keeps_its_numbers() -> None:
    step = Step(Action.PROPOSED_VERSION, "proposed version 3 from round 2", round=2, version=3)
    assert str(step) == "proposed version 3 from round 2" and f"{step}" == str(step)
    assert (step.round, step.version) == (2, 3)


def test_only_steps_that_moved_nothing_are_quiet() -> None:
    quiet = {a for a in Action if Step(a, "").quiet}
    assert quiet == {Action.IDLE, Action.WAITING, Action.FINISHED, Action.ERROR, Action.EVALUATION_FAILED}
    assert not Step(Action.OPENED_ROUND, "opened round 1", round=1).quiet


def test_action_values_are_stable_and_distinct() -> None:
    values = [a.value for a in Action]
    assert len(values) == len(set(values))
    assert Action("proposed_version") is Action.PROPOSED_VERSION
