"""Zen-NAS's Zen-score (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image
Recognition", ICCV 2021), as the authors' ``compute_zen_score`` and NASLib's ``zen`` (the one
NAS-Bench-Suite-Zero ran) compute it, with one repeat::

    re-initialise: every Conv2d / Linear weight ~ N(0, 1), biases 0; BN / GroupNorm weight 1, bias 0
    x1 ~ N(0, 1) of the batch's shape;   x2 = x1 + 0.01 * N(0, 1)
    f = the feature map before global average pooling (BN in train mode, under no_grad)
    delta = mean over samples of sum |f(x1) - f(x2)|
    score = log(delta) + sum_BN log sqrt(mean(running_var))

The data batch gives only the shape (and device, dtype); no label is used.

Details that follow the reference code:

- the BN term reads ``running_var`` AFTER the two forward passes, i.e. updated twice with the
  layer's own momentum (0.1 for every NB201 BN: ``0.81 * v0 + 0.09 * var(x1) + 0.1 * var(x2)``,
  unbiased batch variances), starting from a freshly built network's ``v0 = 1``.  The reference
  always scores a freshly built network; here the private copy's running statistics are reset
  (``reset_running_stats``) before the passes, so the score depends on the architecture and the
  seed only, never on the caller's buffers.  A BN without running statistics
  (``track_running_stats=False``) has no ``running_var`` and is left out of the sum (the
  reference would fail on it);
- every ``_BatchNorm`` with running statistics counts (the reference names ``BatchNorm2d``: the
  same layers in a CNN such as NB201);
- the random numbers come from the session's generator (``seed`` of ``proxies.compute``), drawn
  in the reference's order (the weights in ``net.modules()`` order, then ``x1``, then the
  perturbation), never from the global RNG.  On the CPU, seed ``s`` draws what the reference
  draws after ``torch.manual_seed(s)``;
- the pre-pooling features come from ``net.forward_features(x)`` when the network has it
  (``NB201Network``: after the final BN+ReLU, Zen-NAS's ``forward_pre_GAP``); otherwise from the
  input of the last ``nn.AdaptiveAvgPool2d`` in ``net.modules()`` order, read by a temporary
  forward hook (NASLib's ``forward_before_global_avg_pool``); a network with neither is an error.

An architecture whose features do not depend on the input (the all-``none`` NB201 cell) has
``delta = 0`` and the score is ``-inf``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .registry import register


def gaussian_init_(net: nn.Module, generator: torch.Generator) -> None:
    """Zen-NAS's re-initialisation, in place, drawing from ``generator`` only."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0.0, 1.0, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()


def pre_pooling_features(session) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> the feature map before global pooling`` of the session's network (see the module
    docstring), read through the probe's module hook when the network has no ``forward_features``."""
    net = session.net
    forward_features = getattr(net, "forward_features", None)
    if callable(forward_features):
        return forward_features
    pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    if not pools:
        raise ValueError(f"zen needs the features before global pooling: {type(net).__name__} has no "
                         "forward_features method and no nn.AdaptiveAvgPool2d")
    seen: list[torch.Tensor] = []
    session.on_module(pools[-1], forward=lambda module, args, output: seen.append(args[0]))

    def features(x: torch.Tensor) -> torch.Tensor:
        session.forward(x)
        return seen.pop()

    return features


class ZenScore:
    """Zen-score: see the module docstring."""

    def __init__(self, *, mixup_gamma: float = 1e-2) -> None:
        self.mixup_gamma = float(mixup_gamma)

    def attach(self, session) -> None:  # a private pass: everything happens in finish
        pass

    def finish(self, session):
        net, x = session.net, session.inputs
        gen = session.generator()
        features = pre_pooling_features(session)
        with torch.no_grad():
            gaussian_init_(net, gen)
            for m in net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                    m.reset_running_stats()
            net.train()
            x1 = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            x2 = x1 + self.mixup_gamma * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            f1, f2 = features(x1), features(x2)
            delta = (f1 - f2).abs().sum(dim=tuple(range(1, f1.dim()))).mean()
            score = torch.log(delta.to(torch.float64))
            for m in net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
                    score = score + m.running_var.to(torch.float64).mean().sqrt().log()
        return score, 0


register("zen", params={"mixup_gamma": 1e-2}, higher_is_better=True, needs_labels=False, bn=True,
         pass_kind="zen",
         description="Zen-NAS: log |f(x) - f(x + 0.01 e)| of Gaussian-initialised pre-pooling features + "
                     "the BN scaling term")(ZenScore)
