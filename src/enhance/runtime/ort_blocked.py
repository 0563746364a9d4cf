"""Keep onnxruntime's blocked (NCHWc) layout through reflection padding and residual sums.

On x86 CPUs onnxruntime runs convolutions in a blocked layout (NCHWc: channels in blocks of 8 or 16,
innermost), converting with ``ReorderOutput`` / ``ReorderInput`` nodes around every operator that has
no blocked kernel. ``Pad`` has none, and the Enhance network reflect-pads before each of its thirteen
3x3 convolutions, so a 400x400 image spent a quarter of its time on padding and the two layout
conversions around it, and ``Add`` of the residual sums ran as separate passes.

`blocked_graph` rewrites the graph onnxruntime has optimised for this machine:

* ``ReorderOutput -> Pad -> ReorderInput`` becomes ``Reshape -> Pad -> Reshape``: the blocked
  ``(n, c, h, w)`` buffer is viewed as ``(n, c / b, h, w, b)`` and padded along ``h`` and ``w``, which
  pads every channel exactly as before without leaving the blocked layout;
* ``Conv -> Add(residual)`` becomes the blocked ``Conv`` with the residual as its ``Sum`` input
  (added in the convolution's output pass).

The default models' graph (`~enhance.runtime.wiener_onnx`) pads nothing: each residual block adds the
block's input cropped by two pixels, which onnxruntime runs as ``ReorderOutput -> Slice -> Add ->
ReorderInput`` between the blocked convolutions, a tenth of the time of a pass. `blocked_graph` crops
in the blocked layout instead (``Reshape -> Slice -> Reshape``, the blocked buffer viewed as
``(n, c / b, h, w, b)`` and sliced along ``h`` and ``w``) and adds the crop as the convolution's ``Sum``
input, so that the network's 3x3 convolutions read and write only the blocked layout.

The values are those of the original graph (the sums only reassociate, ~1e-7); `blocked_session`
checks that on a probe image before using the rewritten graph, and otherwise returns None, so the
plain session is kept wherever a runtime version or CPU lays the graph out differently.
"""

import functools
import os
import tempfile

import numpy as np

__all__ = ["blocked_graph", "blocked_session"]

_NCHWC = "com.microsoft.nchwc"
#: Probe image of `blocked_session` (odd sizes, so that no dimension divides a block).
_PROBE_SHAPE = (1, 1, 37, 29)
_PROBE_TOLERANCE = 1e-5  # relative to the largest output value; float32 reassociation is ~1e-7


def _optimised(model: bytes, log_level: int):
    """The graph onnxruntime builds for this machine at its highest optimisation level."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.optimized_model_filepath = os.path.join(folder, "optimised.onnx")
        options.log_severity_level = log_level  # it warns that the file is meant for this machine only
        ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        return onnx.load(options.optimized_model_filepath)


def _block_size(graph) -> int | None:
    """Channels per block, from the 5-D ``Reshape`` shapes onnxruntime adds around blocked sums, or else from a
    blocked convolution with fewer output channels than a block (its weights are padded to one block)."""
    from onnx import numpy_helper

    for initializer in graph.initializer:
        shape = numpy_helper.to_array(initializer)
        if shape.dtype == np.int64 and shape.shape == (5,) and shape[0] == 0 and shape[4] > 1:
            return int(shape[4])
    dims = {initializer.name: list(initializer.dims) for initializer in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}
    for reorder in graph.node:
        if reorder.domain != _NCHWC or reorder.op_type != "ReorderOutput":
            continue
        conv = producer.get(reorder.input[0])
        channels = _attributes(reorder).get("channels", 0)
        if conv is None or conv.op_type != "Conv" or len(dims.get(conv.input[1], [])) != 4:
            continue
        padded = dims[conv.input[1]][0]
        if 0 < channels < padded:
            return int(padded)
    return None


@functools.cache
def _machine_block_size(log_level: int) -> int | None:
    """Channels per block on this machine, read from a small graph whose last convolution has fewer output
    channels than any block (for graphs in which no convolution shows it)."""
    from onnx import TensorProto, helper, numpy_helper

    weights = [numpy_helper.from_array(np.full(shape, 0.1, np.float32), name) for name, shape in
               (("w_in", (32, 1, 3, 3)), ("b_in", (32,)), ("w_out", (4, 32, 3, 3)), ("b_out", (4,)))]  # fmt: skip
    nodes = [helper.make_node("Conv", ["x", "w_in", "b_in"], ["hidden"]),
             helper.make_node("Conv", ["hidden", "w_out", "b_out"], ["y"])]  # fmt: skip
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 9, 9])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "block_probe", inputs, outputs, initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return _block_size(_optimised(model.SerializeToString(), log_level).graph)


def _constant(graph, name: str, values) -> str:
    """Add an int64 constant to ``graph``; returns its name."""
    from onnx import numpy_helper

    graph.initializer.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
    return name


def _attributes(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _consumers(graph) -> dict:
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def _blocked_pads(graph, block: int) -> int:
    """Replace ``ReorderOutput -> Pad -> ReorderInput`` chains by padding in the blocked layout."""
    from onnx import helper, numpy_helper

    consumers = _consumers(graph)
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    replaced, dropped, count = {}, set(), 0
    for reorder in graph.node:
        if reorder.domain != _NCHWC or reorder.op_type != "ReorderOutput":
            continue
        attrs = _attributes(reorder)
        channels = attrs.get("channels")
        if attrs.get("channels_last", 0) or not channels or channels % block:
            continue
        pads = consumers.get(reorder.output[0], [])
        if not pads or not all(_spatial_pad(pad, constants, consumers) for pad in pads):
            continue
        prefix = reorder.output[0]
        shape5 = _constant(graph, f"{prefix}/blocked_shape", [0, channels // block, 0, 0, block])
        shape4 = _constant(graph, f"{prefix}/plain_shape", [0, channels, 0, 0])
        nodes = [helper.make_node("Reshape", [reorder.input[0], shape5], [f"{prefix}/blocked"])]
        for pad in pads:
            top, left, bottom, right = (int(v) for v in constants[pad.input[1]][[2, 3, 6, 7]])
            widths = _constant(graph, f"{pad.output[0]}/blocked_pads", [0, 0, top, left, 0, 0, 0, bottom, right, 0])
            padded, mode = f"{pad.output[0]}/blocked", _attributes(pad)["mode"]
            nodes.append(helper.make_node("Pad", [f"{prefix}/blocked", widths], [padded], mode=mode))
            for unreorder in consumers[pad.output[0]]:
                nodes.append(helper.make_node("Reshape", [padded, shape4], [unreorder.output[0]]))
                dropped.add(id(unreorder))
            dropped.add(id(pad))
        replaced[id(reorder)] = nodes
        count += 1
    _replace(graph, replaced, dropped)
    return count


def _spatial_pad(pad, constants, consumers) -> bool:
    """A constant-width ``Pad`` of the two spatial axes only, read back by ``ReorderInput`` alone."""
    if pad.op_type != "Pad" or pad.domain or len(pad.input) != 2 or pad.input[1] not in constants:
        return False
    widths = constants[pad.input[1]]
    if widths.shape != (8,) or widths[[0, 1, 4, 5]].any():
        return False
    mode = _attributes(pad).get("mode", b"constant")
    if mode not in (b"reflect", b"edge"):
        return False
    readers = consumers.get(pad.output[0], [])
    return bool(readers) and all(r.domain == _NCHWC and r.op_type == "ReorderInput" for r in readers)


def _fused_sums(graph) -> int:
    """Fold ``Reshape(Conv) + Reshape(residual)`` sums into the blocked ``Conv``'s ``Sum`` input."""
    consumers = _consumers(graph)
    producer = {name: node for node in graph.node for name in node.output}
    dropped, count = set(), 0
    for add in graph.node:
        if add.op_type != "Add" or add.domain:
            continue
        readers = consumers.get(add.output[0], [])
        views = [producer.get(name) for name in add.input]
        if len(readers) != 1 or readers[0].op_type != "Reshape":
            continue
        if any(view is None or view.op_type != "Reshape" for view in views):
            continue
        for k in (0, 1):
            conv = producer.get(views[k].input[0])
            if conv is None or conv.domain != _NCHWC or conv.op_type != "Conv" or len(conv.input) > 3:
                continue
            if "activation" in _attributes(conv) or len(consumers[conv.output[0]]) != 1:
                continue  # an activation would act after the sum
            residual = views[1 - k].input[0]  # the blocked 4-D tensor behind the other view
            while len(conv.input) < 3:
                conv.input.append("")
            conv.input.append(residual)
            conv.output[0] = readers[0].output[0]
            dropped.update({id(add), id(readers[0]), id(views[k])})
            if len(consumers[views[1 - k].output[0]]) == 1:
                dropped.add(id(views[1 - k]))
            count += 1
            break
    _replace(graph, {}, dropped)
    return count


def _blocked_crops(graph, block: int) -> int:
    """Crop in the blocked layout and add the crop in the convolution: ``Conv -> ReorderOutput -> Add(Slice(x))``.

    Every ``Slice`` of the two spatial axes of a tensor that a blocked convolution wrote is made from the blocked
    buffer (``Reshape -> Slice -> Reshape``); an ``Add`` of such a crop to the output of a blocked convolution
    (no activation, read by nothing else) becomes that convolution's ``Sum`` input; ``ReorderInput`` of a sum
    so made reads the blocked sum itself. Plain tensors still read by other nodes keep their ``ReorderOutput``.
    """
    from onnx import helper, numpy_helper

    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}
    consumers = _consumers(graph)
    blocked = {}  # plain tensor -> (its blocked twin, channels)
    for node in graph.node:
        channels = _attributes(node).get("channels", 0)
        if node.domain == _NCHWC and node.op_type == "ReorderOutput" and channels and not channels % block:
            blocked[node.output[0]] = (node.input[0], channels)
    inserted, dropped, count = {}, set(), 0
    for node in graph.node:
        if _spatial_slice(node, constants) and node.input[0] in blocked:
            source, channels = blocked[node.input[0]]
            prefix = node.output[0]
            shape5 = _constant(graph, f"{prefix}/blocked_shape", [0, channels // block, 0, 0, block])
            shape4 = _constant(graph, f"{prefix}/plain_shape", [0, channels, 0, 0])
            inserted[id(node)] = [
                helper.make_node("Reshape", [source, shape5], [f"{prefix}/blocked5"]),
                helper.make_node("Slice", [f"{prefix}/blocked5", *node.input[1:]], [f"{prefix}/cropped5"]),
                helper.make_node("Reshape", [f"{prefix}/cropped5", shape4], [f"{prefix}/blocked"]),
            ]
            blocked[prefix] = (f"{prefix}/blocked", channels)
        elif node.op_type == "Add" and not node.domain:
            count += _fuse_crop_sum(node, blocked, producer, consumers, dropped)
    for node in graph.node:  # a convolution reading a sum made blocked reads it directly
        if node.domain == _NCHWC and node.op_type == "ReorderInput" and node.input[0] in blocked:
            for reader in consumers.get(node.output[0], []):
                for i, name in enumerate(reader.input):
                    if name == node.output[0]:
                        reader.input[i] = blocked[node.input[0]][0]
            dropped.add(id(node))
    if count:
        nodes = [n for node in graph.node if id(node) not in dropped for n in [*inserted.get(id(node), []), node]]
        _prune(graph, nodes)
    return count


def _spatial_slice(node, constants) -> bool:
    """A ``Slice`` of the two spatial axes with constant starts and ends and unit steps."""
    if node.op_type != "Slice" or node.domain or len(node.input) != 4:
        return False
    axes = constants.get(node.input[3])
    known = all(name in constants for name in node.input[1:3])
    return known and axes is not None and sorted(int(a) for a in axes.reshape(-1)) == [2, 3]


def _fuse_crop_sum(add, blocked, producer, consumers, dropped) -> int:
    """Make ``add`` (convolution output + blocked crop) the blocked convolution's ``Sum`` input; 1 if done."""
    for k in (0, 1):
        reorder, other = producer.get(add.input[k]), add.input[1 - k]
        if reorder is None or reorder.op_type != "ReorderOutput" or other not in blocked:
            continue
        conv = producer.get(reorder.input[0])
        if conv is None or conv.domain != _NCHWC or conv.op_type != "Conv" or len(conv.input) > 3:
            continue
        if "activation" in _attributes(conv) or len(consumers[conv.output[0]]) != 1:
            continue  # an activation would act after the sum
        if len(consumers[reorder.output[0]]) != 1 or blocked[other][1] != _attributes(reorder)["channels"]:
            continue
        while len(conv.input) < 3:
            conv.input.append("")
        conv.input.append(blocked[other][0])
        conv.output[0] = f"{add.output[0]}/blocked"
        reorder.input[0], reorder.output[0] = conv.output[0], add.output[0]  # the plain sum, if still read
        blocked[add.output[0]] = (conv.output[0], blocked[other][1])
        dropped.add(id(add))
        return 1
    return 0


def _prune(graph, nodes) -> None:
    """Set ``graph``'s nodes to those of ``nodes`` that its outputs need, in an order that runs."""
    needed = {output.name for output in graph.output}
    for node in reversed(_ordered(graph, nodes)):
        if any(name in needed for name in node.output):
            needed.update(node.input)
    kept = [node for node in _ordered(graph, nodes) if any(name in needed for name in node.output)]
    del graph.node[:]
    graph.node.extend(kept)


def _ordered(graph, nodes) -> list:
    """``nodes`` in an order where each runs after the nodes that write its inputs."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    ordered, pending = [], list(nodes)
    while pending:
        waiting = [node for node in pending if not all(name in ready for name in node.input)]
        if len(waiting) == len(pending):
            msg = f"the rewritten graph has a cycle or a missing input at {waiting[0].name or waiting[0].op_type}"
            raise ValueError(msg)
        later = {id(node) for node in waiting}
        for node in pending:
            if id(node) not in later:
                ordered.append(node)
                ready.update(node.output)
        pending = waiting
    return ordered


def _replace(graph, replaced: dict, dropped: set) -> None:
    nodes = []
    for node in graph.node:
        if id(node) in replaced:
            nodes.extend(replaced[id(node)])
        elif id(node) not in dropped:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def blocked_graph(model: bytes, *, log_level: int = 3):
    """onnxruntime's optimised graph of ``model`` with padding and sums kept in the blocked layout.

    Parameters
    ----------
    model : bytes
        A serialised ONNX model.
    log_level : int
        onnxruntime's log severity while it optimises (3: errors only).

    Returns
    -------
    `onnx.ModelProto` or None
        The rewritten graph, valid on this machine only (it holds this CPU's block size); None where
        onnxruntime chose no blocked layout or nothing could be rewritten.

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.runtime.export import onnx_model
    >>> graph = blocked_graph(onnx_model(EnhanceNet(depth=1, width=16)).SerializeToString())
    >>> graph is None or len(graph.graph.node) > 0  # None where this CPU gets no blocked layout
    True
    """
    optimised = _optimised(model, log_level)
    block = _block_size(optimised.graph) or _machine_block_size(log_level)
    if block is None:
        return None
    count = _blocked_pads(optimised.graph, block) + _fused_sums(optimised.graph)
    count += _blocked_crops(optimised.graph, block)
    if not count:
        return None
    used = {name for node in optimised.graph.node for name in node.input}
    unused = [i for i in optimised.graph.initializer if i.name not in used]  # e.g. the 4-D shapes of the sums
    for initializer in unused:
        optimised.graph.initializer.remove(initializer)
    return optimised


def blocked_session(model: bytes, options, *, reference, probe: dict | None = None, rewritten: bytes | None = None):
    """An onnxruntime session of `blocked_graph`, if it reproduces ``reference`` on a probe image.

    Parameters
    ----------
    model : bytes
        A serialised ONNX model with one input of shape ``(n, 1, ny, nx)``.
    options : `onnxruntime.SessionOptions`
        Options of the new session (threads, memory); its optimisation level is set to basic, as the
        graph is optimised already.
    reference : `onnxruntime.InferenceSession`
        The plain session of ``model``, which the new one must agree with.
    probe : dict of str to `~numpy.ndarray`, optional
        The inputs to compare the two sessions on; None: a random image of shape ``(1, 1, 37, 29)`` as
        the first input (a graph with one input).
    rewritten : bytes, optional
        The serialised `blocked_graph` of ``model`` from an earlier call on this machine (a cache): it is
        opened and probed as it is, without the ``onnx`` package; None rewrites ``model``.

    Returns
    -------
    tuple or None
        ``(session, rewritten)``, the session and the serialised graph it runs; None where the graph could
        not be rewritten, or the rewritten one disagreed (by more than 1e-5 of the largest output value)
        or failed to load.

    Examples
    --------
    >>> import onnxruntime as ort
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.runtime.export import onnx_model
    >>> model = onnx_model(EnhanceNet(depth=1, width=16)).SerializeToString()
    >>> plain = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    >>> found = blocked_session(model, ort.SessionOptions(), reference=plain)
    >>> found is None or blocked_session(model, ort.SessionOptions(), reference=plain, rewritten=found[1]) is not None
    True
    """
    import onnxruntime as ort

    try:
        if rewritten is None:
            graph = blocked_graph(model, log_level=max(options.log_severity_level, 3))
            if graph is None:
                return None
            rewritten = graph.SerializeToString()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        session = ort.InferenceSession(rewritten, sess_options=options, providers=["CPUExecutionProvider"])
        if probe is None:
            image = np.random.default_rng(0).uniform(0.2, 1.2, _PROBE_SHAPE).astype(np.float32)
            probe = {reference.get_inputs()[0].name: image}
        expected = reference.run(None, probe)[0]
        got = session.run(None, probe)[0]
    except Exception:  # noqa: BLE001 - any failure of this optional rewrite keeps the plain session
        return None
    tolerance = _PROBE_TOLERANCE * max(1.0, float(np.abs(expected).max()))
    if got.shape != expected.shape or not np.abs(got - expected).max() <= tolerance:
        return None
    return session, rewritten
