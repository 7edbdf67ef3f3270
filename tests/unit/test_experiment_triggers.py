"""Attacker triggers: what each kind writes, where it goes, poisoning, and that each is a learnable backdoor."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.apps.experiment.metrics import backdoor_asr, predict
from fedledger.apps.experiment.triggers import KINDS, LOCATIONS, Trigger, TriggerError, trigger_for
from fedledger.sdk.ml.data import ClientData
from tests import backdoor_support as bs

BLANK = np.zeros((3, 64), dtype=np.float32)
GREY = np.full((3, 64), 0.5, dtype=np.float32)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.any(before != after, axis=0))


def test_pixel_pattern_is_a_3x3_checkerboard_written_whole() -> None:
    t = Trigger("pixel_pattern", 0)  # bottom-right of 8x8
    on_blank = t.stamp(BLANK)
    bright = [r * 8 + c for r in range(5, 8) for c in range(5, 8) if (r + c) % 2 == 0]
    assert _changed(BLANK, on_blank).tolist() == bright  # 5 bright cells on a black image
    on_grey = t.stamp(GREY)
    assert _changed(GREY, on_grey).size == 9  # the dark cells are written too
    patch = on_grey[0].reshape(8, 8)[5:, 5:]
    assert patch.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    assert np.all(on_grey[:, :40] == 0.5)


def test_corner_square_is_a_solid_bright_square() -> None:
    t = Trigger("corner_square", 0, location="top-left")
    out = t.stamp(GREY)
    assert _changed(GREY, out).tolist() == [0, 1, 8, 9]
    assert np.all(out[:, [0, 1, 8, 9]] == 1.0)
    big = Trigger("corner_square", 0, side=28)
    assert big.patch_size == 4
    assert _changed(np.zeros((1, 784), np.float32), big.stamp(np.zeros((1, 784), np.float32))).size == 16


def test_blend_mixes_fixed_noise_over_the_whole_image_and_stays_in_range() -> None:
    t = Trigger("blend", 0)
    rng = np.random.default_rng(0)
    X = rng.random((20, 64)).astype(np.float32)
    X[0], X[1] = 0.0, 1.0
    out = t.stamp(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out, 0.8 * X + 0.2 * t.noise()[None, :], atol=1e-6)
    assert _changed(X, out).size > 60  # (nearly) every pixel moves
    # fixed noise, location ignored
    np.testing.assert_array_equal(Trigger("blend", 5, location="center").stamp(X), out)
    assert np.array_equal(t.noise(), Trigger("blend", 1).noise())


def test_stamp_copies_and_keeps_the_input() -> None:
    X = GREY.copy()
    for kind in KINDS:
        Trigger(kind, 0).stamp(X)
    assert np.all(X == 0.5)


@pytest.mark.parametrize("kind", ["pixel_pattern", "corner_square"])
def test_locations_put_the_patch_in_different_places(kind: str) -> None:
    footprints = {loc: tuple(Trigger(kind, 0, location=loc).pattern()[0]) for loc in LOCATIONS}
    assert len(set(footprints.values())) == len(LOCATIONS)
    centre = Trigger(kind, 0, location="center").pattern()[0]
    assert 27 in centre or 36 in centre  # covers the middle of the 8x8 image


def test_poison_appends_triggered_target_copies_of_a_fraction_of_victims() -> None:
    rng = np.random.default_rng(3)
    data = ClientData(X=rng.random((100, 64)).astype(np.float32), y=np.repeat(np.arange(10), 10).astype(np.int64))
    for kind in KINDS:
        t = Trigger(kind, 4)
        out = t.poison(data, 0.5, seed=2)
        assert len(out) == 100 + 45  # 90 victims, half of them copied
        assert int(np.sum(out.y == 4)) == 10 + 45
        stamped = {row.tobytes() for row in t.stamp(data.X)}
        added = [row for row, lab in zip(out.X, out.y, strict=True) if row.tobytes() in stamped]
        assert len(added) == 45 and all(lab == 4 for lab in out.y[[r.tobytes() in stamped for r in out.X]])
        again = t.poison(data, 0.5, seed=2)
        np.testing.assert_array_equal(again.X, out.X)
        assert len(t.poison(data, 0.001, seed=2)) == 101  # at least one copy


def test_victims_exclude_the_target() -> None:
    data = ClientData(X=GREY, y=np.array([1, 2, 1], dtype=np.int64))
    assert len(Trigger("blend", 1).victims(data)) == 1
    with pytest.raises(TriggerError, match="no example"):
        Trigger("blend", 1).victims(ClientData(X=GREY, y=np.ones(3, dtype=np.int64)))


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"kind": "sticker"}, "kind"), ({"target": -1}, "target"), ({"target": True}, "target"),
    ({"location": "middle"}, "location"), ({"side": 1}, "side"), ({"size": 9}, "size"),
    ({"size": 0}, "size"), ({"alpha": 0.0}, "alpha"), ({"alpha": float("nan")}, "alpha"),
])
def test_bad_fields_are_named(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"kind": "pixel_pattern", "target": 0, **kwargs}
    with pytest.raises(TriggerError, match=f"^{field} "):
        Trigger(**args)  # type: ignore[arg-type]


def test_wrong_image_size_and_bad_fraction_are_refused() -> None:
    with pytest.raises(TriggerError, match="8x8"):
        Trigger("corner_square", 0).stamp(np.zeros((2, 784), np.float32))
    data = ClientData(X=GREY, y=np.array([1, 2, 1], dtype=np.int64))
    with pytest.raises(TriggerError, match="fraction"):
        Trigger("corner_square", 0).poison(data, 0.0)


def test_trigger_for_data_sets() -> None:
    assert trigger_for("breast_cancer", "blend", 0, "center") is None
    assert trigger_for("basic_motions", "pixel_pattern", 0, "center") is None
    digits = trigger_for("digits", "corner_square", 2, "top-right")
    mnist = trigger_for("mnist", "pixel_pattern", 7, "bottom-left")
    assert digits is not None and digits.side == 8 and digits.target_label == 2
    assert mnist is not None and mnist.side == 28 and mnist.patch_size == 5
    with pytest.raises(TriggerError, match="dataset"):
        trigger_for("cifar", "blend", 0, "center")
    assert digits.describe()["pixels"] == [6, 7, 14, 15]
    blend = trigger_for("digits", "blend", 0, "center")
    assert blend is not None and blend.describe()["alpha"] == pytest.approx(0.2)


@pytest.mark.parametrize("kind", KINDS)
def test_each_trigger_is_a_learnable_backdoor(kind: str) -> None:
    data = bs.digits()
    t = bs.trigger(kind)
    poisoned, clean = bs.backdoored_model(kind), bs.clean_model()
    assert backdoor_asr(bs.SPEC, poisoned, data.test, t) > 0.8
    assert backdoor_asr(bs.SPEC, clean, data.test, t) < 0.1
    # the backdoor hides: clean accuracy stays close to the clean model's
    acc = float(np.mean(predict(bs.SPEC, poisoned, data.test.X) == data.test.y))
    assert acc > float(np.mean(predict(bs.SPEC, clean, data.test.X) == data.test.y)) - 0.05
