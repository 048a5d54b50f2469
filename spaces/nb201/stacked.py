"""A group of NB201 networks run as one: the scoring engine's stacked formulation.

Every NB201 network has the same skeleton (stem, 3 stages of N cells, two residual reduction
blocks, final BN+ReLU, classifier); only the operation on each of a cell's 6 edges differs.  A
group of G architectures is therefore run as ONE network whose tensors are laid out
``(batch, G*C, H, W)``: architecture ``g`` owns channels ``[g*C, (g+1)*C)`` everywhere.

- the stem is one convolution with ``G*C`` output channels (the input batch is shared);
- BatchNorm (train mode) normalises each channel over the batch: per architecture by layout;
- a reduction block is a grouped convolution (``groups=G``);
- on each cell edge, the architectures are split by operation: the ones with a conv gather their
  channels (``index_select``), run ONE grouped convolution over the subset, and the results of
  all operations are put back in architecture order (``cat`` + ``index_select``);
- the classifier is a batched matrix product, and the loss the sum of the per-architecture
  mean cross-entropies, so every architecture receives exactly its own gradients.

Architectures never mix: each score equals the one-architecture network's up to floating-point
summation order (grouped vs. dense kernels).  Parameters come from the one-architecture networks
built with the same seeds (:func:`pack_group`), so the initialisation is identical.

Responses (the correlation proxies' inputs) are reported to a ``sink`` as the pass runs — every
tensor with the architectures on dimension 1 — with their layer and, per convention, their
multiplicity (see :class:`spaces.vocabulary.ResponsePoint` and ``NB201Network.response_modules``):

==========================================  ==========  ===============
response                                    ``paper``   ``official``
==========================================  ==========  ===============
activation at a conv's ReLU input           1 per conv  2 per conv (wrapper + inner ReLU)
gradient at a conv's ReLU input             1           1
gradient at a conv's BN input (conv output)  --          1 (the wrapper's hook)
final ReLU: activation                      its input   its output
final ReLU: gradient at its input           1           1
==========================================  ==========  ===============

Only the gradients at responses are needed, not the parameters': the pass computes no weight
gradient at all (the parameters do not require grad; the graph starts after the stem).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ..vocabulary import StackedSink
from .network import EDGES, NB201Arch, NB201Network, NormalCell, ReductionCell

CONV_OPS = {"nor_conv_1x1": (1, 0), "nor_conv_3x3": (3, 1)}  # op -> (kernel, padding)
BN_EPS = 1e-5

#: where the pass reports its responses: ``sink.activation(layer, tensor, idx, mult)`` and
#: ``sink.gradient_at(tensor, layer, idx, mult, m)`` (see :class:`spaces.vocabulary.StackedSink`)
Sink = StackedSink


@dataclass
class StackedGroup:
    """G NB201 architectures with their initial parameters, stacked by architecture.

    ``tensors`` maps a parameter's name to a tensor whose first dimension runs over the
    architectures that have it (all G, or, for an edge's conv, the ones with that op on that
    edge, in group order)."""

    archs: list[NB201Arch]
    channels: int
    cells_per_stage: int
    num_classes: int
    tensors: dict[str, torch.Tensor]
    plan: dict[str, Any] = field(default_factory=dict)  # host-built index tensors (see _plan)

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def n_cells(self) -> int:
        """Cells of each network: 3 stages of ``cells_per_stage`` and two reduction blocks (the
        final ReLU's weighting layer)."""
        return 3 * self.cells_per_stage + 2

    def holders(self, name: str) -> list[int]:
        """The positions of the architectures that have parameter ``name``."""
        if name.startswith("cell"):
            _, edge, op = name.split(":")[1:]
            return [g for g, a in enumerate(self.archs) if a.ops[int(edge)] == op]
        return list(range(len(self.archs)))

    def pin_memory(self) -> "StackedGroup":  # DataLoader(pin_memory=True) calls this
        pin = lambda t: t.pin_memory()  # noqa: E731
        return self._map(pin, pin)

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> "StackedGroup":
        """On ``device`` (copies issued asynchronously from pinned memory), the parameters in
        ``dtype`` (the plan's counts stay float64)."""
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return self._map(lambda t: move(t).to(dtype) if dtype is not None else move(t), move)

    def _map(self, on_param: Callable, on_plan: Callable) -> "StackedGroup":
        plan = {k: on_plan(v) if isinstance(v, torch.Tensor) else v for k, v in self.plan.items()}
        return StackedGroup(self.archs, self.channels, self.cells_per_stage, self.num_classes,
                            {k: on_param(v) for k, v in self.tensors.items()}, plan)

    def subset(self, positions: Sequence[int]) -> "StackedGroup":
        """The group of the architectures at ``positions`` (e.g. half of it after out-of-memory),
        sliced from this group's tensors on whatever device they are."""
        positions = list(positions)
        if positions != sorted(set(positions)):
            raise ValueError("subset positions must be distinct and in increasing order")
        keep = set(positions)
        tensors = {}
        for name, t in self.tensors.items():
            rows = [i for i, g in enumerate(self.holders(name)) if g in keep]
            if not rows:
                continue
            # holders are in group order; positions must be too for the rows to line up
            tensors[name] = t.index_select(0, torch.tensor(rows, device=t.device))
        group = StackedGroup([self.archs[g] for g in positions], self.channels, self.cells_per_stage,
                             self.num_classes, tensors)
        group.plan = _plan(group.archs, device=next(iter(tensors.values())).device)
        return group


def _conv_weight(cell: torch.nn.Module, edge: int) -> torch.Tensor:
    return cell.layers[edge].op[1].weight


def pack_group(nets: Sequence[NB201Network]) -> StackedGroup:
    """Stack the parameters of freshly built networks (same width, depth and classes) into a
    group.  BatchNorm's affine parameters must be at their initial values (1, 0): the stacked
    pass normalises without them."""
    if not nets:
        raise ValueError("an empty group")
    first = nets[0]
    archs = [n.arch for n in nets]
    n_cells = len(first.cells)
    channels = first.stem[0].out_channels
    cells_per_stage = (n_cells - 2) // 3
    for net in nets:
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d) and m.affine and not (
                    bool((m.weight == 1).all()) and bool((m.bias == 0).all())):
                raise ValueError("pack_group needs freshly initialised networks (BatchNorm weight 1, bias 0)")

    def stack(get: Callable[[NB201Network], torch.Tensor], holders: Sequence[NB201Network]) -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([get(n).detach() for n in holders])

    tensors = {"stem": stack(lambda n: n.stem[0].weight, nets),
               "fc_w": stack(lambda n: n.classifier.weight, nets),
               "fc_b": stack(lambda n: n.classifier.bias, nets)}
    for c, cell in enumerate(first.cells):
        if isinstance(cell, ReductionCell):
            tensors[f"red:{c}:a"] = stack(lambda n: n.cells[c].conv_a.op[1].weight, nets)
            tensors[f"red:{c}:b"] = stack(lambda n: n.cells[c].conv_b.op[1].weight, nets)
            tensors[f"red:{c}:down"] = stack(lambda n: n.cells[c].downsample[1].weight, nets)
            continue
        assert isinstance(cell, NormalCell)
        for e in range(len(EDGES)):
            for op in CONV_OPS:
                holders = [n for n in nets if n.arch.ops[e] == op]
                if holders:
                    tensors[f"cell:{c}:{e}:{op}"] = stack(lambda n: _conv_weight(n.cells[c], e), holders)
    group = StackedGroup(archs, channels, cells_per_stage, first.classifier.out_features, tensors)
    group.plan = _plan(archs)
    return group


def _on(t: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    """A host-built tensor on ``device`` (copied asynchronously from pinned memory)."""
    return t if device is None or device.type == "cpu" else t.pin_memory().to(device, non_blocking=True)


def _index(values: Sequence[int], device: torch.device | None) -> torch.Tensor:
    return _on(torch.tensor(list(values), dtype=torch.long), device)


def _plan(archs: Sequence[NB201Arch], device: torch.device | None = None) -> dict[str, Any]:
    """Per edge: which architectures take which op (host lists and index tensors), the order that
    puts the concatenated op results back in group order, and per source node the number of conv
    edges each architecture reads from it (the multiplicity of that node's activation)."""
    G = len(archs)
    plan: dict[str, Any] = {}
    for e in range(len(EDGES)):
        subsets = {}
        for op in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"):
            pos = [g for g, a in enumerate(archs) if a.ops[e] == op]
            if pos:
                subsets[op] = pos
        plan[f"subsets:{e}"] = subsets
        for op, pos in subsets.items():
            if len(pos) < G:
                plan[f"idx:{e}:{op}"] = _index(pos, device)
        order = [g for pos in subsets.values() for g in pos]
        if len(subsets) > 1:
            inverse = [0] * G
            for j, g in enumerate(order):
                inverse[g] = j
            plan[f"inv:{e}"] = _index(inverse, device)
    for src in range(3):
        counts = [sum(1 for (t, s), op in zip(EDGES, a.ops) if s == src and op in CONV_OPS) for a in archs]
        readers = [g for g in range(G) if counts[g]]
        plan[f"readers:{src}"] = readers
        if readers:
            plan[f"readers_idx:{src}"] = _index(readers, device) if len(readers) < G else None
            plan[f"readers_cnt:{src}"] = _on(torch.tensor([float(counts[g]) for g in readers],
                                                          dtype=torch.float64), device)
    return plan


def _bn(x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, None, None, training=True, momentum=0.0, eps=BN_EPS)


def _relu_conv_bn(x: torch.Tensor, w: torch.Tensor, m: int, stride: int, padding: int, *, sink: Sink,
                  layer: int, idx) -> torch.Tensor:
    """ReLU -> grouped conv (m architectures) -> BN, reporting the gradients at the ReLU's input
    (both conventions) and at the BN's input (``official``)."""
    a = F.relu(x)
    sink.gradient_at(a, layer, idx, {"paper": 1.0, "official": 1.0}, m)
    c = F.conv2d(a, w.reshape(-1, *w.shape[2:]), stride=stride, padding=padding, groups=m)
    b = _bn(c)
    sink.gradient_at(b, layer, idx, {"official": 1.0}, m)
    return b


def _normal_cell(h: torch.Tensor, group: StackedGroup, c: int, sink: Sink) -> torch.Tensor:
    G, plan, tensors = len(group), group.plan, group.tensors
    N, GC, H, W = h.shape
    C = GC // G
    nodes = [h]

    def report_node(src: int) -> None:
        readers = plan[f"readers:{src}"]
        if readers:
            cnt = plan[f"readers_cnt:{src}"]
            idx = plan[f"readers_idx:{src}"]
            x = nodes[src].view(N, G, -1)
            x = x if idx is None else x.index_select(1, idx)
            sink.activation(c, x, idx, {"paper": cnt, "official": 2.0 * cnt})

    report_node(0)
    for target in (1, 2, 3):
        acc: Any = 0  # python's sum starts from 0, as the one-architecture cell does
        for e, (t, src) in enumerate(EDGES):
            if t != target:
                continue
            x = nodes[src]
            parts = []
            for op, pos in plan[f"subsets:{e}"].items():
                m = len(pos)
                idx = plan.get(f"idx:{e}:{op}")
                xs = x if idx is None else x.view(N, G, C, H, W).index_select(1, idx).view(N, m * C, H, W)
                if op == "none":
                    r = xs.mul(0.0)
                elif op == "skip_connect":
                    r = xs
                elif op == "avg_pool_3x3":
                    r = F.avg_pool2d(xs, 3, stride=1, padding=1, count_include_pad=False)
                else:
                    _, pad = CONV_OPS[op]
                    r = _relu_conv_bn(xs, tensors[f"cell:{c}:{e}:{op}"], m, 1, pad, sink=sink, layer=c, idx=idx)
                parts.append(r)
            if len(parts) == 1:
                out = parts[0]
            else:
                out = torch.cat(parts, 1).view(N, G, C, H, W).index_select(1, plan[f"inv:{e}"]).view(N, GC, H, W)
            acc = acc + out
        nodes.append(acc)
        if target < 3:
            report_node(target)
    return nodes[3]


def _reduction_cell(h: torch.Tensor, group: StackedGroup, c: int, sink: Sink) -> torch.Tensor:
    G, tensors = len(group), group.tensors
    N = h.shape[0]
    both_twice = {"paper": 1.0, "official": 2.0}
    sink.activation(c, h.view(N, G, -1), None, both_twice)
    a = _relu_conv_bn(h, tensors[f"red:{c}:a"], G, 2, 1, sink=sink, layer=c, idx=None)
    sink.activation(c, a.view(N, G, -1), None, both_twice)
    b = _relu_conv_bn(a, tensors[f"red:{c}:b"], G, 1, 1, sink=sink, layer=c, idx=None)
    w = tensors[f"red:{c}:down"]
    down = F.conv2d(F.avg_pool2d(h, 2, stride=2, padding=0), w.reshape(-1, *w.shape[2:]), groups=G)
    return down + b


def forward_backward(group: StackedGroup, x: torch.Tensor, y: torch.Tensor, sink: Sink) -> torch.Tensor:
    """One forward+backward of the stacked group on batch ``x`` (labels ``y``), reporting every
    response to ``sink``; returns the per-architecture losses (G,), detached.  ``group`` must be
    on ``x``'s device and in its dtype."""
    G = len(group)
    N = x.shape[0]
    t = group.tensors
    with torch.no_grad():  # no response before the first cell: the graph starts after the stem
        h = _bn(F.conv2d(x, t["stem"].reshape(-1, *t["stem"].shape[2:]), padding=1))
    h.requires_grad_(True)
    n_cells = group.n_cells
    for c in range(n_cells):
        if f"red:{c}:a" in t:
            h = _reduction_cell(h, group, c, sink)
        else:
            h = _normal_cell(h, group, c, sink)
    pre = _bn(h)
    sink.activation(n_cells, pre.view(N, G, -1), None, {"paper": 1.0})
    out = F.relu(pre)
    sink.gradient_at(out, n_cells, None, {"paper": 1.0, "official": 1.0}, G)
    sink.activation(n_cells, out.view(N, G, -1), None, {"official": 1.0})
    pooled = F.adaptive_avg_pool2d(out, 1).view(N, G, -1).transpose(0, 1)  # (G, N, C)
    logits = torch.baddbmm(t["fc_b"].unsqueeze(1), pooled, t["fc_w"].transpose(1, 2))  # (G, N, classes)
    losses = F.cross_entropy(logits.reshape(G * N, -1), y.repeat(G), reduction="none").view(G, N).mean(1)
    losses.sum().backward()
    return losses.detach()
