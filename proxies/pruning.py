"""Pruning-at-initialisation saliencies summed over a network (the zero-cost-proxy family of
Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021), plus the two cost
baselines ``params`` and ``flops``.

The saliencies are what the official WRCor release computes (its ``foresight/pruners/measures``,
taken over from SamsungLabs' zero-cost-nas, the code NAS-Bench-Suite-Zero ran through NASLib):
a per-weight (or per-channel) array for every ``nn.Conv2d`` and ``nn.Linear`` weight, in
``net.modules()`` order (:func:`proxies.probe.weight_layers`; biases and BatchNorm parameters
are never scored), each array summed, and the per-layer sums added in that order in the weights'
dtype, as the reference's ``sum_arr`` does.  ``W`` is a layer's weight, ``g = dL/dW`` its
gradient after one forward/backward of the cross-entropy ``L`` on the real batch (BN on, train
mode: batch statistics):

- ``grad_norm``: ``sum_layers ||g||_2`` (Frobenius norm per layer).
- ``snip`` (Lee et al., ICLR 2019): ``sum |W * g|``.  The reference differentiates w.r.t. a
  mask of ones multiplying ``W``; that gradient is ``W * g`` exactly, so no mask is built.
- ``plain``: ``sum W * g`` (no absolute value).
- ``fisher`` (Theis et al. 2018; Turner et al., BlockSwap): for every conv/linear output ``a``
  (before BN) and the gradient ``d = dL/da`` there, ``g_nk = sum_spatial a * d`` per sample n
  and channel k, ``F_k = 0.5 * mean_n g_nk**2``.  The reference is a channel-pruning measure
  and broadcasts ``F_k`` to every weight of channel k before the sum, so each layer contributes
  ``W[0].numel() * sum_k F_k`` (fan-in times kernel size; ``in_features`` for a Linear).  That
  weighting is kept: it is what the golden scores and Suite-Zero's ``fisher`` contain.
- ``grasp`` (Wang et al., ICLR 2020): ``sum -W * Hg`` with ``g`` the (detached) gradient of a
  first forward/backward and ``Hg`` the Hessian-gradient product, obtained by differentiating
  ``z = sum_layers sum(g * dL/dW)`` through a second forward/backward built with
  ``create_graph``.  Sign convention: the GraSP paper scores a weight with ``S = -W * Hg`` and
  prunes the *highest* scores (removing them least reduces the gradient flow), so a network whose
  weights score high would be the one to prune.  zero-cost-nas first dropped the minus sign to
  "keep the top", then restored it because "accuracy seems to be negatively correlated with this
  metric"; the reference returns ``sum -W * Hg`` and the benchmarks (zero-cost-nas, Suite-Zero,
  the WRCor paper) rank it higher-is-better.  We follow the reference: value ``sum -W * Hg``,
  ``higher_is_better=True``.  Its two train-mode forwards update the private copy's BN running
  statistics, as the reference's do; in train mode that changes no output.  Private pass
  ``grasp``: it needs second derivatives, which no other proxy wants.
- ``l2_norm``: ``sum_layers ||W||_2`` (Frobenius norm per layer), the WRCor paper's PNorm.  No
  pass at all (``static``), no labels.

The cost baselines count what NAS-Bench-Suite-Zero's ``params``/``flops`` columns count (NASLib
ran ``tensorwatch.ModelStats``, torchstat's counters, on a batch of one):

- ``params``: every parameter of the network (weights, biases, BN affine), in millions (1e6, not
  2**20), the convention of NB201's ``params_mb_*`` columns too.
- ``flops``: per-sample forward operations in millions, summed over leaf modules: convolution
  multiply-accumulates (``k_h*k_w*c_in/groups*c_out*H_out*W_out``, plus ``c_out*H_out*W_out``
  with a bias); Linear ``rows*in*out`` (no bias term); BatchNorm ``2*numel`` of its input
  (``1*`` without affine); ReLU-family ``numel`` of its input; Avg/MaxPool ``k_h*k_w`` per output
  element; adaptive pooling torchstat's way, ``sum over output cells of (h_window+1)*(w_window+1)``
  per channel (its off-by-one kept: ``(8+1)**2 * 64`` for NB201's final pool on CIFAR); Upsample
  ``numel`` of its output.  Element-wise sums, multiplications by zero (NB201's ``none``) and
  reshapes count nothing.  Counted by forward hooks in a shared ``forward`` pass from the tensors'
  per-sample shapes, so the value does not depend on the batch size.  Measured: ``params`` and
  ``flops`` equal Suite-Zero's CIFAR-10 columns exactly, as floats, on all 9,445 of its rows (a
  hand count of the same rules; networks for a sample of rows; tests/test_proxies_pruning.py).
  These are neither pure MACs (BN, ReLU and pooling are in) nor what NB201's own counter
  (xautodl's ``get_model_infos``: conv + linear only) gives: 15.64737 for the architecture where
  Suite-Zero has 19.248832.
  A network that states its own FLOPs -- a method ``stated_flops()`` giving its space's count
  per sample, e.g. the ``mobilenetv2`` space's networks: the released WRCor ``get_FLOPs()``
  MACs -- reports that count instead (in millions; no forward).  ``params`` is every
  parameter on every space (on ``mobilenetv2`` that is its true count, not the released
  ``get_model_size``).
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch
from torch import nn

from .probe import on_tensor_gradient, weight_layers
from .registry import register


def sum_layers(terms: list[torch.Tensor]) -> torch.Tensor | float:
    """The reference's ``sum_arr``: each per-layer array summed, the sums added in layer order
    in their own dtype (float32 for float32 weights).  ``0.0`` for a network with no layers."""
    total: torch.Tensor | float = 0.0
    for t in terms:
        total = total + torch.sum(t)
    return total


# ------------------------------------------------------------------------------------------------
# saliencies read from the standard pass's weight gradients

_GRADIENT_MEASURES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "grad_norm": lambda w, g: torch.linalg.vector_norm(g),
    "snip": lambda w, g: torch.abs(w * g),
    "plain": lambda w, g: g * w,
}


class WeightGradientSaliency:
    """``sum_layers sum(f(W, dL/dW))`` after the standard pass (``f`` named by ``measure``)."""

    def __init__(self, *, measure: str) -> None:
        if measure not in _GRADIENT_MEASURES:
            raise ValueError(f"unknown measure {measure!r}; valid: {sorted(_GRADIENT_MEASURES)}")
        self.measure = measure

    def attach(self, session) -> None:
        pass

    def finish(self, session):
        f = _GRADIENT_MEASURES[self.measure]
        terms = []
        for layer in weight_layers(session.net):
            w, g = layer.weight.detach(), layer.weight.grad
            # a weight the loss does not reach has no gradient: it scores 0, as in the reference
            terms.append(torch.zeros_like(w) if g is None else f(w, g))
        return sum_layers(terms), 0


class Fisher:
    """Channel Fisher information of every conv/linear output, weighted by the channel's fan-in."""

    def __init__(self) -> None:
        self.layers: list[nn.Module] = []
        self.fisher: list[torch.Tensor | None] = []

    def attach(self, session) -> None:
        self.layers = weight_layers(session.net)
        self.fisher = [None] * len(self.layers)
        for i, layer in enumerate(self.layers):
            session.on_module(layer, forward=self._watch(i))

    def _watch(self, i: int):
        def forward(module, args, output):
            # each call's output is paired with the gradient at that same output (a tensor hook,
            # gone with the graph), so a module called several times is handled call by call
            if isinstance(output, torch.Tensor) and output.requires_grad:
                act = output.detach()
                on_tensor_gradient(output, lambda grad: self._accumulate(i, act, grad))

        return forward

    def _accumulate(self, i: int, act: torch.Tensor, grad: torch.Tensor) -> None:
        prod = act * grad
        g_nk = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
        del_k = g_nk.pow(2).mean(0).mul(0.5)
        self.fisher[i] = del_k if self.fisher[i] is None else self.fisher[i] + del_k

    def finish(self, session):
        terms = []
        for layer, f in zip(self.layers, self.fisher):
            w = layer.weight
            per_channel = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device) if f is None else f.abs()
            # broadcast to every weight of the channel, as the reference does before summing
            terms.append(per_channel.reshape(-1, *([1] * (w.dim() - 1))).expand(w.shape).contiguous())
        return sum_layers(terms), 0


class GraSP:
    """``sum -W * Hg`` (the reference's GraSP), in a private pass of its own."""

    def attach(self, session) -> None:
        pass

    def finish(self, session):
        net = session.net
        net.train()
        net.zero_grad(set_to_none=True)
        layers = weight_layers(net)
        weights = [layer.weight for layer in layers]
        for w in weights:
            w.requires_grad_(True)
        x, y = session.inputs, session.targets
        loss = session.loss_fn(net(x), y)
        grad_w = torch.autograd.grad(loss, weights, allow_unused=True)
        loss = session.loss_fn(net(x), y)
        grad_f = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        z: torch.Tensor | float = 0
        for gw, gf in zip(grad_w, grad_f):
            if gw is not None and gf is not None:
                z = z + (gw.detach() * gf).sum()
        if isinstance(z, torch.Tensor) and z.requires_grad:
            z.backward()
        terms = [torch.zeros_like(w) if w.grad is None else -w.detach() * w.grad for w in weights]
        return sum_layers(terms), 0


class L2Norm:
    """``sum_layers ||W||_2`` (static: no pass)."""

    def attach(self, session) -> None:
        pass

    def finish(self, session):
        return sum_layers([torch.linalg.vector_norm(layer.weight.detach()) for layer in weight_layers(session.net)]), 0


# ------------------------------------------------------------------------------------------------
# cost baselines


class Params:
    """Every parameter of the network, in millions."""

    def attach(self, session) -> None:
        pass

    def finish(self, session):
        return sum(p.numel() for p in session.net.parameters()) / 1e6, 0


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _adaptive_pool_ops(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> int:
    """torchstat's count for one channel of an adaptive pool: ``(window + 1)`` per dimension."""
    (h, w), (oh, ow) = in_hw, out_hw
    total = 0
    for i in range(oh):
        dy = math.ceil((i + 1) * h / oh) - math.floor(i * h / oh)
        for j in range(ow):
            dx = math.ceil((j + 1) * w / ow) - math.floor(j * w / ow)
            total += (dy + 1) * (dx + 1)
    return total


def module_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Suite-Zero's (torchstat's) operation count of one call of a leaf module, per sample."""
    per_sample = lambda t: math.prod(t.shape[1:])  # noqa: E731
    if isinstance(module, nn.Conv2d):
        k_h, k_w = _pair(module.kernel_size)
        positions = math.prod(out.shape[2:])
        ops = k_h * k_w * (module.in_channels // module.groups) * module.out_channels * positions
        return ops + (module.out_channels * positions if module.bias is not None else 0)
    if isinstance(module, nn.BatchNorm2d):
        return per_sample(inp) * (2 if module.affine else 1)
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        k_h, k_w = _pair(module.kernel_size)
        return per_sample(out) * k_h * k_w
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return inp.shape[1] * _adaptive_pool_ops(tuple(inp.shape[2:]), tuple(out.shape[2:]))
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)):
        return per_sample(inp)
    if isinstance(module, nn.Upsample):
        return per_sample(out)
    if isinstance(module, nn.Linear):
        rows = inp.numel() // (inp.shape[0] * module.in_features)
        return rows * module.in_features * module.out_features
    return 0


_COUNTED = (nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
            nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.Upsample, nn.Linear)


class Flops:
    """Per-sample forward operations in millions, counted as NAS-Bench-Suite-Zero counts them,
    from a private forward of ONE sample of the batch (the count does not depend on the batch);
    or, for a network that states its own count (``net.stated_flops()``: its space's accounting),
    that count."""

    def __init__(self) -> None:
        self.total = 0

    def attach(self, session) -> None:
        self.total = 0
        if callable(getattr(session.net, "stated_flops", None)):
            return

        def count(module, args, output):
            if args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
                self.total += module_flops(module, args[0], output)

        for m in session.net.modules():
            if isinstance(m, _COUNTED) and not any(True for _ in m.children()):
                session.on_module(m, forward=count)

    def finish(self, session):
        stated = getattr(session.net, "stated_flops", None)
        if callable(stated):
            return float(stated()) / 1e6, 0
        # the count is per sample: one sample's forward gives it at 1/N of a batch's cost
        session.net.train()
        session.forward(session.inputs[:1])
        return self.total / 1e6, 0


# ------------------------------------------------------------------------------------------------
# registrations


def _saliency(name: str, description: str) -> None:
    register(name, higher_is_better=True, needs_labels=True, bn=True, pass_kind="standard",
             description=description)(functools.partial(WeightGradientSaliency, measure=name))


_saliency("grad_norm", "sum over conv/linear layers of ||dL/dW||_2 (zero-cost-nas grad_norm)")
_saliency("snip", "SNIP: sum over conv/linear weights of |W * dL/dW| (zero-cost-nas snip)")
_saliency("plain", "sum over conv/linear weights of W * dL/dW, no abs (zero-cost-nas plain)")
register("fisher", higher_is_better=True, needs_labels=True, bn=True, pass_kind="standard",
         description="Fisher: per conv/linear output channel 0.5*mean_n(sum_spatial a*dL/da)^2, "
                     "times the channel's fan-in, summed (zero-cost-nas fisher)")(Fisher)
register("grasp", higher_is_better=True, needs_labels=True, bn=True, pass_kind="grasp",
         description="GraSP as zero-cost-nas computes it: sum over conv/linear weights of -W * Hg "
                     "(Hessian-gradient product), higher is better")(GraSP)
register("l2_norm", higher_is_better=True, needs_labels=False, bn=True, pass_kind="static",
         description="PNorm: sum over conv/linear layers of ||W||_2 (zero-cost-nas l2_norm)")(L2Norm)
register("params", higher_is_better=True, needs_labels=False, bn=True, pass_kind="static",
         description="number of parameters in millions (Suite-Zero params)")(Params)
register("flops", higher_is_better=True, needs_labels=False, bn=True, pass_kind="flops",
         description="per-sample forward operations in millions, counted as Suite-Zero's flops "
                     "(torchstat: conv MACs, linear, 2x BN, ReLU, pooling); a network stating its space's "
                     "count reports that (mobilenetv2: the released get_FLOPs MACs)")(Flops)
