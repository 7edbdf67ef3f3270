"""Splitting any single-input, single-output ONNX graph into a pipeline of stages at single-tensor cuts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import onnx
from onnx import helper

from fedledger.abci_app.errors import ConfigError

__all__ = ["stage_model_name", "SplitError", "cut_points", "default_cuts", "split_model"]


class SplitError(ConfigError):
    """A model cannot be split as asked: not one input and one output, or a cut that is not a valid cut point."""

    error_code = "SPLIT_CUT"


def _subgraph_refs(graph: onnx.GraphProto) -> set[str]:
    """Outer-scope names a subgraph (an If/Loop/Scan body) reads without defining them itself."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(_node_inputs(node))
        defined.update(node.output)
    used.update(o.name for o in graph.output)
    return used - defined


def _node_inputs(node: onnx.NodeProto) -> set[str]:
    """Every tensor a node reads: its inputs (optional empty ones left out) and its subgraphs' captures."""
    names = {name for name in node.input if name}
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            names |= _subgraph_refs(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            for sub in attr.graphs:
                names |= _subgraph_refs(sub)
    return names


@dataclass
class _Graph:
    """The analysed graph: live nodes in order, which of them depend on the input, and the tensors' types."""

    model: onnx.ModelProto
    input_name: str
    output_name: str
    nodes: list[onnx.NodeProto]  # only nodes the output needs, in the file's (topological) order
    reads: list[set[str]]  # reads[i]: every tensor nodes[i] reads
    producer: dict[str, int]  # tensor -> index in nodes of the node that writes it
    dynamic: list[bool]  # dynamic[i]: nodes[i] depends (transitively) on the graph input
    types: dict[str, onnx.TypeProto]
    constants: set[str]  # initializer names (sparse ones included)
    cuts: list[str]


def _analyse(model_bytes: bytes) -> _Graph:
    """Parse, shape-infer and analyse model_bytes; SplitError unless it has one input and one output."""
    try:
        model = onnx.load_model_from_string(model_bytes)
        # Shape inference gives the cut tensors their types (and symbolic dims such as a batch dim).
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, InferenceError, ...
        raise SplitError(f"not a readable ONNX model: {exc}") from None
    graph = model.graph
    constants = {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}
    # Before IR 4 initializers were also listed as graph inputs; only the others are fed at run time.
    inputs = [i.name for i in graph.input if i.name not in constants]
    outputs = [o.name for o in graph.output]
    if len(inputs) != 1 or len(outputs) != 1:
        raise SplitError(f"only graphs with one input and one output can be split; this one has inputs "
                         f"{inputs} and outputs {outputs}")
    input_name, output_name = inputs[0], outputs[0]

    # Keep only what the output needs: a dead branch must neither block a cut nor land in a stage.
    all_nodes = list(graph.node)
    all_reads = [_node_inputs(node) for node in all_nodes]
    writer = {name: i for i, node in enumerate(all_nodes) for name in node.output if name}
    needed, stack = set(), [output_name]
    while stack:
        name = stack.pop()
        i = writer.get(name)
        if i is not None and i not in needed:
            needed.add(i)
            stack.extend(all_reads[i])
    keep = sorted(needed)
    nodes = [all_nodes[i] for i in keep]
    reads = [all_reads[i] for i in keep]
    producer = {name: j for j, node in enumerate(nodes) for name in node.output if name}

    dynamic: list[bool] = []
    for j in range(len(nodes)):
        if any(producer.get(name, -1) >= j for name in reads[j]):
            raise SplitError(f"node {nodes[j].name or nodes[j].op_type!r} reads a tensor written after it: "
                             "the graph's nodes are not in topological order")
        dynamic.append(any(name == input_name or (name in producer and dynamic[producer[name]])
                           for name in reads[j]))

    types = {v.name: v.type for v in (*graph.value_info, *graph.input, *graph.output)}
    analysed = _Graph(model, input_name, output_name, nodes, reads, producer, dynamic, types, constants, [])
    analysed.cuts = [name for name in _candidates(analysed) if _is_cut(analysed, name)]
    return analysed


def _candidates(g: _Graph) -> Iterable[str]:
    """Intermediate tensors written by input-dependent nodes, in node order."""
    for j, node in enumerate(g.nodes):
        if g.dynamic[j]:
            for name in node.output:
                if name and name != g.output_name:
                    yield name


def _ancestors(g: _Graph, tensor: str) -> set[int]:
    """Indices of the input-dependent nodes that tensor is computed from (its writer included)."""
    found: set[int] = set()
    stack = [g.producer[tensor]] if tensor in g.producer else []  # the graph input has no writer
    while stack:
        j = stack.pop()
        if j in found or not g.dynamic[j]:
            continue
        found.add(j)
        stack.extend(g.producer[name] for name in g.reads[j] if name in g.producer)
    return found


def _is_cut(g: _Graph, tensor: str) -> bool:
    """Whether everything after tensor needs nothing from before it but tensor itself.

    Constant-only nodes (those not depending on the input) sit on neither side: every stage that
    reads one of their tensors gets its own copy of them.
    """
    elem = g.types.get(tensor)
    if elem is None or not elem.HasField("tensor_type") or elem.tensor_type.elem_type == 0:
        return False  # a stage's input needs a known type; shape inference could not give one
    head = _ancestors(g, tensor)
    head_tensors = {name for j in head for name in g.nodes[j].output if name} | {g.input_name}
    if g.output_name in head_tensors:
        return False
    for j in range(len(g.nodes)):
        if j in head or not g.dynamic[j]:
            continue
        if any(name in head_tensors and name != tensor for name in g.reads[j]):
            return False
    return True


def cut_points(model_bytes: bytes) -> list[str]:
    """The tensors at which the graph can be cut into a head and a tail with only that tensor crossing.

    A cut point is an intermediate tensor (neither the input nor the output) such that every node
    after it reads only it, initializers and constant-only values; for a chain of layers that is
    every layer boundary. Listed in topological order. Raises SplitError unless the model has one
    input and one output.
    """
    return list(_analyse(model_bytes).cuts)


def _constant_closure(g: _Graph, reads: Iterable[str]) -> set[int]:
    """The constant-only nodes (transitively) needed to produce the given tensors."""
    found: set[int] = set()
    stack = [g.producer[name] for name in reads if name in g.producer and not g.dynamic[g.producer[name]]]
    while stack:
        j = stack.pop()
        if j not in found:
            found.add(j)
            stack.extend(g.producer[n] for n in g.reads[j] if n in g.producer and not g.dynamic[g.producer[n]])
    return found


def _value_info(g: _Graph, name: str) -> onnx.ValueInfoProto:
    """A value_info for tensor name carrying its inferred type (symbolic dims kept)."""
    info = onnx.ValueInfoProto()
    info.name = name
    info.type.CopyFrom(g.types[name])
    return info


def _stage(g: _Graph, index: int, members: set[int], source: str, target: str) -> bytes:
    """One stage as a standalone model: members' nodes plus the constants they read, source -> target."""
    # target too: a constant-only output (a graph that ignores its input) is written by constants alone.
    wanted = members | _constant_closure(g, [target, *(n for j in members for n in g.reads[j])])
    order = sorted(wanted)
    read = {name for j in order for name in g.reads[j]}
    written = {name for j in order for name in g.nodes[j].output if name}
    src = g.model.graph
    initializers = [t for t in src.initializer if t.name in read]
    sparse = [t for t in src.sparse_initializer if t.values.name in read]
    # Models older than IR 4 must also list their initializers as graph inputs; keep that where it was so.
    init_inputs = [i for i in src.input if i.name in g.constants and i.name in read]
    internal = written - {target}
    graph = helper.make_graph(
        [g.nodes[j] for j in order],
        f"{src.name or 'graph'}.stage{index}",
        [_value_info(g, source), *init_inputs],
        [_value_info(g, target)],
        initializer=initializers,
        sparse_initializer=sparse,
        value_info=[v for v in src.value_info if v.name in internal],
    )
    # Everything but the graph is carried over (opsets, local functions, producer, metadata); copied
    # field by field because copying the whole model first would duplicate every weight per stage.
    model = onnx.ModelProto(
        ir_version=g.model.ir_version, producer_name=g.model.producer_name,
        producer_version=g.model.producer_version, domain=g.model.domain, model_version=g.model.model_version,
        doc_string=g.model.doc_string, graph=graph,
    )
    model.opset_import.extend(g.model.opset_import)
    model.functions.extend(g.model.functions)
    model.metadata_props.extend(g.model.metadata_props)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise SplitError(f"stage {index} ({source} -> {target}) is not a valid model: {exc}") from None
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def split_model(model_bytes: bytes, cuts: Sequence[str]) -> list[bytes]:
    """Split the model at cuts (cut point names, in graph order) into len(cuts) + 1 standalone models.

    Stage 0 reads the original input and writes cuts[0]; stage i reads cuts[i-1] and writes
    cuts[i]; the last stage writes the original output. Each stage holds only the nodes and
    initializers it uses; the crossing tensors keep their inferred types (a symbolic batch dim
    stays symbolic). Raises SplitError for a name that is not a cut point or cuts out of order.
    """
    if isinstance(cuts, str):
        raise SplitError(f"cuts must be a sequence of tensor names, not the string {cuts!r}")
    g = _analyse(model_bytes)
    position = {name: i for i, name in enumerate(g.cuts)}
    bad = [c for c in cuts if c not in position]
    if bad:
        raise SplitError(f"{bad} are not cut points of this model; valid cuts, in order: {g.cuts}")
    if any(position[a] >= position[b] for a, b in zip(cuts, cuts[1:], strict=False)):
        raise SplitError(f"cuts {list(cuts)} must be distinct and in graph order: {g.cuts}")
    boundaries = [g.input_name, *cuts, g.output_name]
    done: set[int] = set()
    stages: list[bytes] = []
    for index, (source, target) in enumerate(zip(boundaries, boundaries[1:], strict=False)):
        upto = _ancestors(g, target)
        if not done <= upto:
            # Two valid cuts always nest; this guards against a cut that runs parallel to an earlier one.
            raise SplitError(f"cut {target!r} does not come after {source!r}; valid cuts, in order: {g.cuts}")
        stages.append(_stage(g, index, upto - done, source, target))
        done = upto
    return stages


def default_cuts(model_bytes: bytes, stages: int) -> list[str]:
    """stages - 1 cut points spread evenly over the graph by node position, for a stages-way split."""
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise SplitError(f"stages must be a positive int, got {stages!r}")
    g = _analyse(model_bytes)
    if stages - 1 > len(g.cuts):
        raise SplitError(f"cannot split into {stages} stages: the model has {len(g.cuts)} cut points {g.cuts}")
    where = [g.producer[name] for name in g.cuts]
    total = len(g.nodes)
    chosen: list[int] = []
    for k in range(1, stages):
        # The cut nearest to an even share of the nodes, after the previous pick and leaving enough
        # cut points for the stages still to come.
        low = chosen[-1] + 1 if chosen else 0
        high = len(g.cuts) - (stages - 1 - k)
        target = k * total / stages - 1
        chosen.append(min(range(low, high), key=lambda i: (abs(where[i] - target), i)))
    return [g.cuts[i] for i in chosen]


def stage_model_name(task_id: str, index: int, parts: int) -> str:
    """The OIP model name under which inference nodes serve part `index` (1-based) of a `parts`-way split."""
    return f"{task_id}.stage-{index}-of-{parts}"
