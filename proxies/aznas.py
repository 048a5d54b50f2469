"""AZ-NAS's training-free proxies (Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network
Architecture Search", CVPR 2024), as the authors' released NB201 scorer
(``NB201/ZeroShotProxy/compute_az_nas_score.py``, network ``NB201/custom/tss_model.py``) computes
them.  Three per-network proxies, all higher-is-better and label-free::

    az_expressivity   s_E = sum over l of H(F_l)
    az_progressivity  s_P = min over l >= 1 of H(F_l) - H(F_{l-1})
    az_trainability   s_T = mean over l >= 1 of 2 - s_l - 1 / (s_l + 1e-6)

The AZ-NAS rank aggregate combines these three with the network's FLOPs (the existing ``flops``
proxy: its complexity term) as a sum of log relative ranks over an architecture set; it has no
per-network value and is not registered here.

Definitions.  The features F_0 .. F_L are the output of ``net.stem`` and of each of ``net.cells``
(NB201: the stem and the 17 cells, 15 normal + 2 residual reduction blocks, so L = 17).

- H(F): F (B, C, H, W) is laid out as B*H*W samples of C channels, centred per channel; its
  covariance (divided by B*H*W, not B*H*W - 1) has eigenvalues lambda; with p = lambda / sum(lambda),
  H = -sum p * log(p + 1e-8) (an entropy of the normalised spectrum, in float32 like the source).
- s_l: the largest singular value of G_in^T G_out / (B*H_out*W_out), where G_out is a random
  Rademacher (+-1) tensor shaped like F_l and G_in the gradient of <F_l, G_out> with respect to
  F_{l-1} (back through cell l only).  When a cell changes resolution, G_in is pixel-unshuffled by
  the stride (H_in / H_out) first, so the spatial positions line up (more channels per position).

Conventions of the released code that are kept (paraphrased):

- the network is re-initialised before scoring (``init=kaiming``, the default): every Conv2d and
  Linear weight Kaiming-normal, fan-in, ReLU gain, biases 0; every affine BatchNorm2d / GroupNorm
  weight 1, bias 0 (``init=none`` keeps the weights given);
- BN in train mode (batch statistics); the input is standard Gaussian noise shaped like the batch
  given (``inputs=noise``, the default: only its shape, device and dtype are used), or the batch
  itself (``inputs=real``);
- the random numbers are drawn in the source's order from the session's generator (``seed`` of
  ``proxies.compute``), never the global RNG: the weights (in ``net.apply`` order), then the noise
  input, then one Rademacher tensor per cell pair from the LAST pair back to the first (the source
  draws G_out = 2 * (bernoulli(1/2) - 1/2) as it walks backwards).  On the CPU, seed ``s``
  reproduces the source run after ``torch.manual_seed(s)``;
- a pair whose G_in equals G_out exactly (same shape, every element equal: a cell that passes its
  input through, e.g. ``skip_connect~0`` with ``none`` on the other edges into the last node) scores
  -inf, so s_T is -inf;
- any score that is NaN becomes -inf: a cell whose features are all zero (an all-``none`` cell) has
  a zero spectrum, so p is NaN and s_E and s_P are -inf.  Note that such an architecture still has a
  finite (hugely negative) s_T: a zero G_in gives s_l = 0 and 2 - 1 / 1e-6;
- per-layer entropies and singular values are float32 (as the source, whose values are then
  combined in float64).

Networks.  Any network exposing ``stem`` (a module) and ``cells`` (a sequence of modules each
mapping one tensor to the next) is supported: NB201 / NATS-TSS, NATS-SSS.  The features are read by
running ``stem`` then each cell in turn (the source's ``extract_cell_features``), so the network's
forward must be that chain.  A network without them (NB101's ``layers``, DARTS cells that take two
inputs, MobileNetV2) gets an error outcome naming its class and what is missing.

A caveat of the released arithmetic, kept: a stage whose covariance is rank-deficient can get a
slightly negative eigenvalue from rounding, then p + 1e-8 < 0, the log is NaN and s_E, s_P are
-inf.  On NB201 it happens where a stage is dominated by a low-rank part: the skip-only cell
(its features grow 4x per cell, so the last stage is dominated by the reduction block's rank-32
shortcut; -inf at batch 8 and 64, as the official run in the fixture) and some cells at small
batches; on NATS-SSS for every stem wider than 27 channels (a 3x3 conv of 3 input channels has rank
<= 27).

Pass.  The three proxies share the private pass ``aznas`` (registered ``shares_private``, so
:func:`proxies.pass_group` gives them one session when their parameters are equal): the features
are computed once, and once for every AZ-NAS proxy attached to the session (keyed by the
parameters).  Asked for alone, expressivity and progressivity run only the forward pass (under
``no_grad``); trainability adds the per-cell backward.

Measured on this project's CPU (2 contended cores, ``OMP_NUM_THREADS=1``, torch 2.13, NB201 C=16
N=5, noise batch 64, seed 1), official scorer vs this port (the "all three" column was measured
with three sessions, before the three shared one; one shared session costs about the
trainability column; then expressivity / progressivity / trainability asked for alone):

============================  ========  ================  ===================
architecture                  official  port, all three   port, per proxy
============================  ========  ================  ===================
C10 optimum (3x3 convs)       2.0 s     3.5 s             0.8 / 0.8 / 1.9 s
skip_connect~0 identity cell  0.4 s     0.8 s             0.2 / 0.1 / 0.4 s
all none                      0.5 s     1.1 s             0.2 / 0.3 / 0.7 s
random (two, see fixture)     2.2-2.5   3.8-5.1 s         0.9-1.2 / 0.9-1.4 / 2.0-2.5 s
============================  ========  ================  ===================
"""
from __future__ import annotations

import inspect
import math
import weakref
from typing import Any

import torch
from torch import nn

from .registry import register

COMPONENTS = ("expressivity", "progressivity", "trainability")
INPUTS = ("noise", "real")
INITS = ("kaiming", "none")


# ------------------------------------------------------------------------------------------------
# the network's feature stages


def feature_stages(net: nn.Module) -> tuple[nn.Module, list[nn.Module]]:
    """``(stem, cells)`` of ``net``, or a ValueError naming its class and what AZ-NAS needs.

    >>> import spaces
    >>> stem, cells = feature_stages(spaces.get_space("nb201", channels=4).build(
    ...     "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|", 10))
    >>> len(cells)
    17
    >>> feature_stages(nn.Linear(2, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: AZ-NAS reads the feature stages ...: Linear has no 'stem' and no 'cells' attribute ...
    """
    name = type(net).__name__
    stem, cells = getattr(net, "stem", None), getattr(net, "cells", None)
    missing = [a for a, v in (("stem", stem), ("cells", cells)) if v is None]
    if missing:
        raise ValueError(f"AZ-NAS reads the feature stages stem -> cell_1 -> ... -> cell_L: {name} has no "
                         f"{' and no '.join(repr(m) for m in missing)} attribute (it needs a module `stem` and "
                         f"a sequence `cells` of modules, each taking the previous stage's output)")
    if not isinstance(stem, nn.Module):
        raise ValueError(f"AZ-NAS: {name}.stem is a {type(stem).__name__}, not an nn.Module")
    try:
        cells = list(cells)
    except TypeError:
        raise ValueError(f"AZ-NAS: {name}.cells is a {type(cells).__name__}, not a sequence of modules") from None
    if not cells:
        raise ValueError(f"AZ-NAS: {name}.cells is empty (it needs at least one cell after the stem)")
    for i, cell in enumerate(cells):
        if not isinstance(cell, nn.Module):
            raise ValueError(f"AZ-NAS: {name}.cells[{i}] is a {type(cell).__name__}, not an nn.Module")
        required = _required_inputs(cell)
        if required is not None and required != 1:
            raise ValueError(f"AZ-NAS needs a chain of single-input cells: {name}.cells[{i}] "
                             f"({type(cell).__name__}) takes {required} inputs, so its features are not a "
                             f"stem -> cells chain")
    return stem, cells


def _required_inputs(cell: nn.Module) -> int | None:
    """How many positional arguments ``cell.forward`` requires (None when it cannot be told)."""
    try:
        sig = inspect.signature(cell.forward)
    except (TypeError, ValueError):
        return None
    params = sig.parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params
               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)


# ------------------------------------------------------------------------------------------------
# the scorer


def kaiming_init_(net: nn.Module, generator: torch.Generator) -> None:
    """The source's default re-initialisation (``kaiming_norm_fanin``), in place, in ``net.apply``
    order, drawing from ``generator`` only."""
    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    net.apply(init)


def spectral_entropy(feature: torch.Tensor) -> torch.Tensor:
    """H(F) of one feature map (0-dim, the feature's dtype): see the module docstring."""
    b, c, h, w = feature.shape
    f = feature.detach().permute(0, 2, 3, 1).reshape(b * h * w, c)
    f = f - f.mean(dim=0, keepdim=True)
    sigma = (f.t() @ f) / f.shape[0]
    s = torch.linalg.eigvalsh(sigma)
    p = s / s.sum()
    return (-p * torch.log(p + 1e-8)).sum()


def pair_trainability(f_in: torch.Tensor, f_out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """2 - s - 1/(s + 1e-6) of one cell (float64, 0-dim), or -inf when G_in equals G_out; draws
    one Rademacher tensor shaped like ``f_out`` from ``generator``.  Frees the cell's graph."""
    g_out = (torch.bernoulli(torch.full_like(f_out, 0.5), generator=generator) - 0.5) * 2
    g_in = torch.autograd.grad(outputs=f_out, inputs=f_in, grad_outputs=g_out, retain_graph=False)[0]
    same = torch.equal(g_in, g_out) if g_in.shape == g_out.shape else False
    if same:  # the source's identity-cell rule
        return torch.tensor(-math.inf, dtype=torch.float64, device=f_out.device)
    if g_in.shape[2:] != g_out.shape[2:]:
        g_in = nn.functional.pixel_unshuffle(g_in, int(g_in.shape[2] / g_out.shape[2]))
    bo, co, ho, wo = g_out.shape
    ci = g_in.shape[1]
    g_out = g_out.permute(0, 2, 3, 1).reshape(bo * ho * wo, co)
    g_in = g_in.permute(0, 2, 3, 1).reshape(-1, ci)
    mat = (g_in.t() @ g_out) / (bo * ho * wo)
    if mat.shape[0] < mat.shape[1]:
        mat = mat.t()
    top = torch.linalg.svdvals(mat).max().to(torch.float64)
    return -top - 1 / (top + 1e-6) + 2


def nan_to_neg_inf(t: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isnan(t), torch.full_like(t, -math.inf), t)


def az_nas_scores(net: nn.Module, inputs: torch.Tensor, generator: torch.Generator, *, input_kind: str = "noise",
                  init: str = "kaiming", trainability: bool = True) -> dict[str, Any]:
    """The AZ-NAS scores of ``net`` (modified in place: call it on a private copy) as 0-dim float64
    tensors: ``expressivity``, ``progressivity`` and, with ``trainability=True``, ``trainability``;
    plus ``entropies`` (the per-stage H, float32) and ``pairs`` (per cell, first to last)."""
    stem, cells = feature_stages(net)
    net.train()
    if init == "kaiming":
        kaiming_init_(net, generator)
    if input_kind == "noise":
        x = torch.randn(inputs.shape, generator=generator, device=inputs.device, dtype=inputs.dtype)
    else:
        x = inputs.detach()
    with torch.set_grad_enabled(trainability):
        features = [stem(x)]
        for cell in cells:
            features.append(cell(features[-1]))
    entropies = torch.stack([spectral_entropy(f) for f in features])
    h = entropies.to(torch.float64)
    out: dict[str, Any] = {"entropies": entropies,
                           "expressivity": nan_to_neg_inf(h.sum()),
                           "progressivity": nan_to_neg_inf((h[1:] - h[:-1]).min())}
    if trainability:
        if not all(f.requires_grad for f in features):
            raise ValueError(f"AZ-NAS trainability: the features of {type(net).__name__} do not require "
                             "gradients (no parameters before a stage?)")
        pairs = [pair_trainability(features[i - 1], features[i], generator)
                 for i in reversed(range(1, len(features)))][::-1]
        out["pairs"] = torch.stack(pairs)
        out["trainability"] = nan_to_neg_inf(out["pairs"].mean())
    return out


# ------------------------------------------------------------------------------------------------
# the proxies

#: per session: {parameters: {"wanted": set of components, "result": scores or None}}
_SESSIONS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


class AZNASProxy:
    """One AZ-NAS score (``component``): see the module docstring."""

    component = ""

    def __init__(self, *, inputs: str = "noise", init: str = "kaiming") -> None:
        if inputs not in INPUTS:
            raise ValueError(f"unknown inputs={inputs!r}; valid: {list(INPUTS)}")
        if init not in INITS:
            raise ValueError(f"unknown init={init!r}; valid: {list(INITS)}")
        self.inputs, self.init = inputs, init
        self._result: dict[str, Any] | None = None

    def _entry(self, session) -> dict:
        return _SESSIONS.setdefault(session, {}).setdefault((self.inputs, self.init),
                                                            {"wanted": set(), "result": None})

    def attach(self, session) -> None:  # a private pass: everything happens in finish
        self._entry(session)["wanted"].add(self.component)

    def finish(self, session):
        entry = self._entry(session)
        if entry["result"] is None:
            entry["result"] = az_nas_scores(session.net, session.inputs, session.generator(), input_kind=self.inputs,
                                            init=self.init, trainability="trainability" in entry["wanted"])
        self._result = entry["result"]
        return self._result[self.component], 0

    def cause(self, value: float, n_skipped: int) -> str:
        """Why the value is not finite (read after the scores, so host reads are fine here)."""
        r = self._result or {}
        if self.component == "trainability" and "pairs" in r:
            bad = [i + 1 for i, v in enumerate(r["pairs"].tolist()) if v == -math.inf]
            if bad:
                return (f"-inf: cell(s) {bad} pass their input gradient through unchanged (G_in == G_out, "
                        "an identity cell), which the official scorer scores -inf")
            return "-inf: the mean over cells is NaN (mapped to -inf as the official scorer does)"
        if "entropies" in r:
            bad = [i for i, v in enumerate(r["entropies"].tolist()) if math.isnan(v)]
            if bad:
                return (f"-inf: the features of stage(s) {bad} (0 = stem) have a zero or NaN covariance "
                        "spectrum (e.g. an all-'none' cell), so their entropy is NaN, mapped to -inf as the "
                        "official scorer does")
        return f"the proxy returned {value}"


class AZExpressivity(AZNASProxy):
    component = "expressivity"


class AZProgressivity(AZNASProxy):
    component = "progressivity"


class AZTrainability(AZNASProxy):
    component = "trainability"


_PARAMS = {"inputs": "noise", "init": "kaiming"}
for _cls, _text in ((AZExpressivity, "AZ-NAS expressivity: sum over stem + cell outputs of the feature-covariance "
                                     "eigen-entropy (Kaiming re-init, Gaussian inputs)"),
                    (AZProgressivity, "AZ-NAS progressivity: min over consecutive stages of the increase of the "
                                      "feature-covariance eigen-entropy"),
                    (AZTrainability, "AZ-NAS trainability: mean over cells of 2 - s - 1/s, s = top singular value "
                                     "of the cell's Rademacher-probed input/output gradient map")):
    register(f"az_{_cls.component}", params=dict(_PARAMS), higher_is_better=True, needs_labels=False, bn=True,
             pass_kind="aznas", shares_private=True, description=_text)(_cls)
