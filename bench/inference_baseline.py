"""The inference bench's peer: a plain FastAPI + onnxruntime server written the obvious way, with no batching.

It is what one would write without the inference node: parse the JSON, np.asarray each input,
session.run, answer JSON. It speaks just enough of the Open Inference Protocol v2 (JSON tensors on
POST /v2/models/{name}/infer) for the bench's load generator to drive it and the node alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException, Request

from fedledger.sdk.inference.datatypes import NUMPY_OF, oip_of_numpy

__all__ = ["create_baseline_app"]

_NUMPY = NUMPY_OF  # the OIP datatype table every party shares


def create_baseline_app(model_bytes: bytes, name: str, *, intra_op_num_threads: int | None = None) -> FastAPI:
    """A one-route OIP server for one ONNX model; onnxruntime's default threads unless told otherwise."""
    options = ort.SessionOptions()
    if intra_op_num_threads is not None:
        options.intra_op_num_threads = intra_op_num_threads
    session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    app = FastAPI(title="onnxruntime baseline")

    @app.post("/v2/models/{model_name}/infer")
    async def infer(model_name: str, request: Request) -> dict[str, Any]:
        if model_name != name:
            raise HTTPException(404, f"unknown model {model_name!r}")
        body = await request.json()
        feeds = {t["name"]: np.asarray(t["data"], dtype=_NUMPY[t["datatype"]]).reshape(t["shape"])
                 for t in body["inputs"]}
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, feeds)
        return {"model_name": name, "outputs": [
            {"name": n, "datatype": oip_of_numpy(v.dtype), "shape": list(v.shape), "data": v.ravel().tolist()}
            for n, v in zip(names, values, strict=True)]}

    return app


def main(argv: list[str] | None = None) -> None:
    """`python -m fedledger.bench.inference_baseline MODEL.onnx NAME PORT`: serve it (the bench's peer process)."""
    import sys

    import uvicorn

    args = sys.argv[1:] if argv is None else argv
    path, name, port = args[0], args[1], int(args[2])
    with open(path, "rb") as f:
        app = create_baseline_app(f.read(), name, intra_op_num_threads=1)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
