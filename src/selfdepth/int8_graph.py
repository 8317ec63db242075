"""Two rewrites of a quantised (QDQ) ONNX graph that move plain copies of feature maps onto uint8.

After onnxruntime's static quantisation, two kinds of node still copied whole feature maps in float32
between a DequantizeLinear and a QuantizeLinear, and onnxruntime (1.32) does not fold either away:

- **Pad** (the decoder's reflection pads, the encoder's TF "SAME" zero pads): quantised, it sits
  between a DequantizeLinear and a QuantizeLinear with the same scale and zero point, since padding
  adds no new value (a reflection repeats values; a zero pad adds 0, which the uint8 grid always holds).
  Rewritten, the Pad reads and writes the uint8 tensor (a zero pad fills with the zero point).
- **nearest Resize** (the decoder's 2x upsampling) followed by a QuantizeLinear: nearest neighbours copy
  values, so quantising before or after is the same; before, it quantises a quarter of the values and
  the Resize copies bytes instead of floats.

Both give the same numbers to the bit (``tests/test_export.py`` checks); they only change where the
bytes are copied. With Clip quantised too (``export.QUANTISED_OPS``), an untrained Lite0 at 640x192 went
from 57 to 10 (de)quantisations and, timed once on one thread of a Zen 4 EPYC, from 52.4 to 44.5 ms per
frame; ``benchmarks/results/inference.json`` has the export's speed beside Monodepth2's. The graph is
changed in place; each function returns how many nodes it rewrote.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["copies_on_uint8", "pads_on_uint8", "upsampling_on_uint8"]


def copies_on_uint8(model: onnx.ModelProto) -> dict[str, int]:
    """Both rewrites; returns ``{"pads": n, "upsamplings": m}``."""
    return {"pads": pads_on_uint8(model), "upsamplings": upsampling_on_uint8(model)}


def _links(nodes: Iterable[onnx.NodeProto]) -> tuple[dict[str, onnx.NodeProto], dict[str, list[onnx.NodeProto]]]:
    """Tensor name -> the node that writes it, and -> the nodes that read it."""
    made_by, read_by = {}, {}
    for n in nodes:
        for name in n.output:
            made_by[name] = n
        for name in n.input:
            read_by.setdefault(name, []).append(n)
    return made_by, read_by


def _per_tensor(node: onnx.NodeProto, values: dict[str, np.ndarray]) -> tuple | None:
    """A (De)QuantizeLinear's constant per-tensor (scale, zero point, dtype), else None."""
    if len(node.input) < 3 or node.input[1] not in values or node.input[2] not in values:
        return None  # no zero point given, or computed at run time: not ours to reason about
    scale, zero = values[node.input[1]], values[node.input[2]]
    return (float(scale), int(zero), zero.dtype) if scale.size == 1 and zero.size == 1 else None


def _attribute(node: onnx.NodeProto, name: str, default: str) -> str:
    return next((a.s.decode() for a in node.attribute if a.name == name), default)


def _replace_nodes(model: onnx.ModelProto, order: list[onnx.NodeProto]) -> None:
    """The graph's nodes become ``order`` (copies: a protobuf list cannot hold its own items twice), and the
    shape records of tensors no node writes any more go (they would describe a renamed tensor)."""
    order = [onnx.NodeProto.FromString(n.SerializeToString()) for n in order]
    del model.graph.node[:]
    model.graph.node.extend(order)
    written = {name for n in model.graph.node for name in n.output}
    kept = [v for v in model.graph.value_info if v.name in written]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)


def pads_on_uint8(model: onnx.ModelProto) -> int:
    """DequantizeLinear -> Pad -> QuantizeLinear (one scale and zero point) becomes a Pad on uint8."""
    nodes = model.graph.node
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    made_by, read_by = _links(nodes)
    dead: set[int] = set()
    rewritten = 0
    for pad in [n for n in nodes if n.op_type == "Pad"]:
        dq, after = made_by.get(pad.input[0]), read_by.get(pad.output[0], [])
        if dq is None or dq.op_type != "DequantizeLinear" or len(after) != 1 or after[0].op_type != "QuantizeLinear":
            continue
        q, mode, grid = after[0], _attribute(pad, "mode", "constant"), _per_tensor(dq, values)
        if grid is None or grid != _per_tensor(q, values):
            continue  # another grid after the pad: a real requantisation, left alone
        if mode == "constant":
            given = len(pad.input) > 2 and pad.input[2] != ""
            fill = values.get(pad.input[2]) if given else np.zeros(())
            if fill is None or float(fill) != 0.0:
                continue  # a non-zero fill may fall between the grid's steps: left in float
            name = f"{pad.name}_uint8_fill"
            model.graph.initializer.append(numpy_helper.from_array(np.array(grid[1], grid[2]), name))
            if len(pad.input) > 2:
                pad.input[2] = name
            else:
                pad.input.append(name)
        elif mode not in ("reflect", "edge"):
            continue  # an unknown mode: left in float
        pad.input[0], pad.output[0] = dq.input[0], q.output[0]
        dead.add(id(q))
        if len(read_by[dq.output[0]]) == 1:  # the DequantizeLinear fed only this pad
            dead.add(id(dq))
        rewritten += 1
    _replace_nodes(model, [n for n in nodes if id(n) not in dead])
    return rewritten


def upsampling_on_uint8(model: onnx.ModelProto) -> int:
    """float -> nearest Resize -> QuantizeLinear becomes float -> QuantizeLinear -> Resize on uint8."""
    nodes = model.graph.node
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    _, read_by = _links(nodes)
    first: dict[int, onnx.NodeProto] = {}  # id(Resize) -> the QuantizeLinear that now runs before it
    for resize in [n for n in nodes if n.op_type == "Resize"]:
        after = read_by.get(resize.output[0], [])
        if _attribute(resize, "mode", "nearest") != "nearest" or len(after) != 1:
            continue
        q = after[0]
        if q.op_type != "QuantizeLinear" or _per_tensor(q, values) is None:
            continue
        between = f"{resize.name}_uint8_in"
        q.input[0], q.output[0], resize.input[0], resize.output[0] = (
            resize.input[0], between, between, q.output[0])
        first[id(resize)] = q
    moved = {id(q) for q in first.values()}
    order = []  # the graph stays topologically sorted: each moved QuantizeLinear just before its Resize
    for n in nodes:
        if id(n) in moved:
            continue
        if id(n) in first:
            order.append(first[id(n)])
        order.append(n)
    _replace_nodes(model, order)
    return len(first)
