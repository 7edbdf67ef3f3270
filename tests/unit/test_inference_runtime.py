"""The inference node's ONNX runtime: declared tensors in OIP terms, runs that match onnxruntime, clear load errors."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.abci_app.errors import FedLedgerError
from fedledger.node.inference.errors import InferenceRunError, ModelLoadError
from fedledger.node.inference.holder import ModelHolder, ServedModel
from fedledger.node.inference.runtime import LoadedModel, TensorSpec
from fedledger.sdk.inference.datatypes import NUMPY_OF, oip_of_numpy
from tests.inference_node_support import direct, doubled_rows_model, gather_model, gemm_relu_model


def test_declared_tensors_of_a_batchable_model() -> None:
    model = LoadedModel.from_bytes(gemm_relu_model(), name="m", version="1")
    assert model.inputs == (TensorSpec("input", "FP32", (-1, 4)),)
    assert model.outputs == (TensorSpec("logits", "FP32", (-1, 3)),)
    assert model.batchable and model.input("input") is model.inputs[0] and model.input("nope") is None
    assert model.inputs[0].metadata() == {"name": "input", "datatype": "FP32", "shape": [-1, 4]}


def test_fixed_shape_int64_model_is_generic_and_not_batchable() -> None:
    model = LoadedModel.from_bytes(gather_model(), name="g", version="7")
    assert [(t.name, t.datatype, t.shape) for t in model.inputs] == [("ids", "INT64", (2, 3)), ("shift", "FP32", (2,))]
    assert model.outputs == (TensorSpec("emb", "FP32", (2, 3, 2)),)
    assert not model.batchable
    feeds = {"ids": np.array([[0, 1, 2], [3, 4, 9]], np.int64), "shift": np.array([0.5, -1], np.float32)}
    out = model.run(feeds)
    np.testing.assert_array_equal(out["emb"], direct(gather_model(), feeds)["emb"])
    assert model.runs == 1


def test_run_matches_onnxruntime_and_numpy() -> None:
    model = LoadedModel.from_bytes(gemm_relu_model(3), name="m", version="1", intra_op_num_threads=2)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    got = model.run({"input": x})["logits"]
    np.testing.assert_array_equal(got, direct(gemm_relu_model(3), {"input": x})["logits"])
    assert got.shape == (5, 3) and (got >= 0).all()


def test_bad_bytes_give_a_family_error() -> None:
    with pytest.raises(ModelLoadError, match="not an ONNX model onnxruntime can load") as info:
        LoadedModel.from_bytes(b"definitely not onnx", name="m", version="1")
    assert isinstance(info.value, FedLedgerError) and info.value.error_code == "INFERENCE_MODEL"
    with pytest.raises(ModelLoadError, match="intra_op_num_threads"):
        LoadedModel.from_bytes(gemm_relu_model(), name="m", version="1", intra_op_num_threads=0)


def test_check_and_run_errors_are_clear() -> None:
    model = LoadedModel.from_bytes(gather_model(), name="g", version="1")
    with pytest.raises(InferenceRunError, match="takes inputs"):
        model.check({"ids": np.zeros((2, 3), np.int64)})
    with pytest.raises(InferenceRunError, match="INT64 \\[2, 3\\], got int32"):
        model.check({"ids": np.zeros((2, 3), np.int32), "shift": np.zeros(2, np.float32)})
    with pytest.raises(InferenceRunError, match="failed to run"):  # an index past the table: onnxruntime refuses
        model.run({"ids": np.full((2, 3), 99, np.int64), "shift": np.zeros(2, np.float32)})


def test_dynamic_dim_zero_that_is_not_a_batch_is_still_batchable_by_declaration() -> None:
    # The batcher checks the rows at run time (tests/unit/test_inference_batcher.py); the declaration alone allows it.
    model = LoadedModel.from_bytes(doubled_rows_model(), name="r", version="1")
    assert model.batchable and model.outputs[0].shape == (-1, 2)


def test_datatype_tables_round_trip() -> None:
    for name, dtype in NUMPY_OF.items():
        assert oip_of_numpy(dtype) == name
        assert oip_of_numpy(dtype.newbyteorder("=")) == name
    assert oip_of_numpy(np.dtype("<U3")) is None


def test_holder_swaps_atomically_and_tracks_staleness() -> None:
    holder = ModelHolder()
    assert not holder.ready and holder.current is None and holder.swaps == 0
    first = LoadedModel.from_bytes(gemm_relu_model(0), name="m", version="1")
    assert holder.swap(first) is None
    assert holder.ready and holder.current == ServedModel(first, "1", {})
    second = ServedModel(LoadedModel.from_bytes(gemm_relu_model(1), name="m", version="2"), "v2", {"cid": "bafy"})
    previous = holder.swap(second)
    assert previous is not None and previous.model is first and holder.current is second and holder.swaps == 2
    assert holder.freshness() == (False, "") and not holder.stale
    holder.mark_stale("chain unreachable since 12:00")
    assert holder.stale and holder.stale_reason == "chain unreachable since 12:00"
    holder.mark_fresh()
    assert holder.freshness() == (False, "")
    assert holder.unload() is second and not holder.ready and holder.unload() is None
