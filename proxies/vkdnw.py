"""VKDNW (Týbl & Neumann, "Training-free Neural Architecture Search through Variance of Knowledge
of Deep Network Weights", CVPR 2025), as the authors' released NB201 scorer
(``ondratybl/VKDNW``, ``NB201/ZeroShotProxy/compute_vkdnw_score.py``) computes it.

Two proxies:

- ``vkdnw``: the entropy of the normalised deciles of the spectrum of an empirical Fisher
  information matrix restricted to a few scalar weights (higher is better);
- ``vkdnw_dim``: aleph, the number of named parameter tensors of the network (for NB201 a step
  function of the number of convolution edges; 246 for the C-10 optimum).  The paper's
  ``VKDNW_single`` ranks by the pair (``vkdnw_dim``, ``vkdnw``) lexicographically, both ascending,
  so ``vkdnw_dim`` is higher-is-better too (``paper_preparation.ipynb``, dense rank of the tuple).

Definition (paraphrased)::

    re-initialise (init=kaiming): conv/linear weights ~ kaiming-normal (fan-in, ReLU gain), biases 0;
        BatchNorm2d / GroupNorm with affine parameters: weight 1, bias 0
    x = N(0, 1) noise of the batch's shape (inputs=noise), or the given batch (inputs=real)
    the network in eval mode (BN normalises with its running statistics: 0 / 1 for a fresh network)
    theta = the first ``tensors`` (128) entries of named_parameters(), from each tensor the ``p``
        elements at linspace(0, numel - 1, steps=p) (p=1: element 0 of each tensor)
    J_i = d logits(x_i) / d theta  (C x P, one sample at a time: per-sample Jacobians)
    p_i = 0.95 softmax(logits(x_i)) + 0.05 / C;  L_i lower triangular with L_i L_i^T = diag(p_i) - p_i p_i^T
    F = mean_i J_i^T L_i^T L_i J_i   (fisher=released: what the code forms)
      = mean_i J_i^T L_i L_i^T J_i   (fisher=exact: the textbook Fisher of the categorical model)
    lambda = singular values of F;  q_k = the k/10 quantile of lambda (k = 1..9)
    vkdnw = -sum_k q^_k log(q^_k + 1e-10),   q^ = q / (||q||_1 + 1e-10)

Conventions of the released code, kept here:

- **p.** The released default ``p=0`` makes ``linspace(..., steps=0)`` empty: no parameter is
  selected and the score is undefined (the quantile of an empty spectrum).  The paper's variant
  (and the published runs) use ``p=1`` = element 0 of each tensor; that is the default here and
  ``p=0`` is rejected.  For ``p`` larger than a tensor's size the rule repeats indices, as released.
- **Fisher.** The released code multiplies the Jacobian by the Cholesky-type factor L on the left
  and forms ``(L J)^T (L J) = J^T L^T L J``; the Fisher of the softmax likelihood is
  ``J^T (diag p - p p^T) J = J^T L L^T J``.  ``fisher=released`` (default) reproduces the code,
  ``fisher=exact`` the textbook matrix.  L is the closed form the code uses (with
  ``q_j = 1 - sum_{k<=j} p_k``, ``q_{C-1} := 0``: ``L_jj = sqrt(p_j q_j / q_{j-1})``,
  ``L_ij = -p_i L_jj / q_j`` below the diagonal); its smoothing constants are float16 in the code
  (0.05 -> 0.050003, 0.95 -> 0.950195), so the smoothed probabilities sum to ~1.0002 - kept.
- **BN in eval mode** for the logits and the Jacobians (running statistics, not batch statistics;
  per-sample Jacobians are then exactly the batch's rows).  ``init=kaiming`` also resets the BN
  running statistics (mean 0, variance 1): the released driver always scores a freshly built
  network (VKDNW is its first scorer), so the score depends on the architecture and the seed
  only.  ``init=none`` keeps the given weights AND buffers.
- **Random numbers** come from the session's generator (``seed`` of ``proxies.compute``), in the
  released order: the kaiming draws in ``net.apply`` order (every leaf conv/linear, in
  ``net.modules()`` order), then the noise batch.  On the CPU, seed ``s`` gives exactly what the
  released code draws after ``torch.manual_seed(s)``.
- **SVD failure**: the released code catches a ``LinAlgError`` and uses the spectrum ``[0, 0]``
  (score 0); kept.
- per-sample Jacobians (``jacobian=vmap``, the default) use ``torch.func`` (``vmap`` over the
  samples of ``jacrev`` of a ``functional_call``), as released; the selected scalars are written
  into their tensors out of place (``index_put``; the released in-place write is refused by
  torch >= 2.1 inside ``jacrev``, and writes the same values).
- the logits: the network's output if it is a tensor; if it returns a tuple/list (the official
  ``TinyNetwork`` returns ``(features, logits)``), its last element.

Two parameters that are not the released code's:

- ``jacobian=per_class``: the same Jacobian from ONE forward of the batch and one backward per
  class (C backward passes of the batch instead of batch x C per-sample vector-Jacobian products,
  and no weight gradients).  Each selected scalar theta_k gets a per-sample perturbation delta_k
  (zeros) added to its module's output as ``delta_k[i] * d output_i / d theta_k`` (closed forms
  for ``Conv2d``, ``Linear`` and eval-mode BatchNorm, forward-mode AD for any other module); then
  ``d sum_i logits[i, c] / d delta_k[i] = J[i, c, k]``, because in eval mode no sample's logits
  depend on another sample.  A BatchNorm that normalises with batch statistics (no running
  statistics) couples the samples: ``per_class`` then falls back to ``vmap``.  It also scores
  networks ``torch.func`` cannot transform.  In float64 it equals ``vmap`` to 1e-12; in float32
  the two differ by rounding, which the next point magnifies.
- ``precision=float64``: the same weights and inputs (drawn as above, then cast), in float64.
  The released float32 score is fragile: the Fisher's largest singular value is 1e5-1e8 and its
  deciles are 1e-2-1e2, and an SVD's rounding error is ~1e-7 of the largest singular value.
  Where the exact spectrum is mostly zero (a cell whose parametric edges reach no output: at
  most 25 of the 128 singular values are non-zero, so eight deciles are 0 and the exact score is
  0) the float32 score is the entropy of rounding noise (0.33 instead of 0 on such a cell,
  batch 16); elsewhere the middle deciles move by up to a few percent.

Where it cannot run (an error outcome): a network with no parameters, an output that is not a
``(batch, classes)`` tensor with at least 2 classes, or a network that ``torch.func`` cannot
transform (data-dependent Python control flow, ``.item()`` in forward, ...).

Golden check (tests/fixtures/vkdnw_official.json): the released scorer (VKDNW HEAD 6901b65 with the
one-line out-of-place ``index_put`` fix, ``nn.Module.cuda`` shimmed) on its ``TinyNetwork`` C=16 N=5,
10 classes, after ``torch.manual_seed(s)``, against this port on the harness's NB201 networks: 5
architectures x batch 16 and 64 agree bit for bit (relative difference 0; the tests ask <= 1e-5).

CPU seconds per architecture (2-core shared CPU, 1 thread, 32x32 noise; this port / released code,
alternating in one process; the cost grows with the number of conv edges):

============================================  ==============  ==============
architecture                                  batch 16        batch 64
============================================  ==============  ==============
C-10 optimum (5 conv3x3, dim 246)             5.8 / 8.2       26.9 / 27.6
1 conv1x1 + 2 conv3x3 + pool (dim 156)        4.7 / 4.5       29.6 / 25.9
1 conv3x3 + 2 pool (dim 66)                   3.6 / 3.5       17.0 / 11.7
skip/none only (dim 21)                       0.6 / 0.8       1.6 / 1.4
all none (dim 21, score 0)                    0.8 / 1.2       2.4 / 2.9
============================================  ==============  ==============
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F
from torch.func import functional_call, jacrev, jvp, vmap

from .probe import rewriting_outputs
from .registry import register

INPUTS = ("noise", "real")
INITS = ("kaiming", "none")
FISHERS = ("released", "exact")
JACOBIANS = ("vmap", "per_class")
PRECISIONS = ("float32", "float64")


def kaiming_init_(net: nn.Module, generator: torch.Generator) -> None:
    """The released ``kaiming_norm_fanin`` re-initialisation (in ``net.apply`` order), drawing
    from ``generator`` only; BN running statistics are reset to a fresh network's."""
    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.reset_running_stats()

    with torch.no_grad():
        net.apply(init)


def _logits(out) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        out = out[-1]
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] < 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"vkdnw needs logits shaped (batch, classes >= 2); the network returned {shape}")
    return out


def selected_scalars(net: nn.Module, tensors: int, p: int) -> list[tuple[str, torch.Tensor]]:
    """(name, flat indices) of the scalars theta: the first ``tensors`` named parameters, ``p``
    elements each at ``linspace(0, numel - 1, steps=p)`` (truncated to integers)."""
    chosen = []
    for name, v in list(net.named_parameters())[:tensors]:
        idx = torch.linspace(0, v.numel() - 1, steps=p).long().to(v.device)
        chosen.append((name, idx))
    if not chosen:
        raise ValueError(f"vkdnw needs a network with parameters; {type(net).__name__} has none")
    return chosen


def _jacobian_vmap(net: nn.Module, x: torch.Tensor, chosen: list[tuple[str, torch.Tensor]]) -> torch.Tensor:
    """J by ``torch.func``, as released: ``vmap`` over the samples of ``jacrev`` of a
    ``functional_call`` on one sample."""
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.detach() for k, v in net.named_buffers()}
    theta = {k: params[k].flatten()[idx] for k, idx in chosen}

    def logits_of(theta: dict[str, torch.Tensor], sample: torch.Tensor) -> torch.Tensor:
        full = dict(params)
        for k, idx in chosen:
            full[k] = params[k].flatten().index_put((idx,), theta[k]).reshape(params[k].shape)
        return _logits(functional_call(net, (full, buffers), (sample.unsqueeze(0),))).squeeze(0)

    jac = vmap(jacrev(logits_of), in_dims=(None, 0))(theta, x)
    return torch.cat([jac[k].flatten(2) for k, _ in chosen], dim=2).detach()


def _unit(weight: torch.Tensor, flat: int) -> torch.Tensor:
    e = torch.zeros(weight.numel(), dtype=weight.dtype, device=weight.device)
    e[flat] = 1
    return e.view_as(weight)


def _tangent(module: nn.Module, name: str, flat: int, inp: torch.Tensor, out: torch.Tensor) -> tuple[int, torch.Tensor]:
    """(channel, tangent) for one call ``out = module(inp)``: the derivative of the output w.r.t.
    element ``flat`` of the module's parameter ``name``.  Closed forms for convolutions, linear
    layers on (batch, features) and BatchNorm in eval mode (each affine in its parameters): the
    element moves one output channel (dim 1), ``channel``, and ``tangent`` is that channel's
    derivative.  Any other module: forward-mode AD (``torch.func.jvp``), channel -1 and the
    derivative of the whole output."""
    inp = inp.detach()
    weight = getattr(module, name).detach()
    if isinstance(module, nn.Conv2d) and module.padding_mode == "zeros":
        if name == "bias":
            return flat, torch.ones_like(out[:, flat])
        o, i, kh, kw = (int(v) for v in torch.unravel_index(torch.tensor(flat), weight.shape))
        c_in = o // (module.out_channels // module.groups) * weight.shape[1] + i
        kernel = torch.zeros((1, 1) + tuple(weight.shape[2:]), dtype=weight.dtype, device=weight.device)
        kernel[0, 0, kh, kw] = 1
        return o, F.conv2d(inp[:, c_in:c_in + 1], kernel, None, module.stride, module.padding, module.dilation)[:, 0]
    if isinstance(module, nn.Linear) and inp.dim() == 2:
        if name == "bias":
            return flat, torch.ones_like(out[:, flat])
        o, i = divmod(flat, weight.shape[1])
        return o, inp[:, i]
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.training and module.running_var is not None:
        if name == "bias":
            return flat, torch.ones_like(out[:, flat])
        return flat, (inp[:, flat] - module.running_mean[flat]) * torch.rsqrt(module.running_var[flat] + module.eps)
    return -1, jvp(lambda w: functional_call(module, {name: w}, (inp,)), (weight,), (_unit(weight, flat),))[1]


def _jacobian_per_class(net: nn.Module, x: torch.Tensor,
                        chosen: list[tuple[str, torch.Tensor]]) -> torch.Tensor | None:
    """J from one forward of the whole batch and one backward per class: every selected scalar
    theta_k gets a per-sample perturbation delta_k (zeros, shape (batch,)) added to its module's
    output as ``delta_k[i] * d output_i / d theta_k``; then d sum_i logits[i, c] / d delta_k[i] =
    d logits[i, c] / d theta_k = J[i, c, k], because in eval mode no sample's logits depend on
    another sample's activations.  It assumes a parameter acts through its module's forward only;
    None (use vmap) where a module owning a selected parameter was never called, or was called
    with several inputs or returned something other than one tensor."""
    modules = dict(net.named_modules())
    owners: dict[str, list[tuple[str, int, int]]] = {}
    column = 0
    for name, idx in chosen:
        owner, _, attr = name.rpartition(".")
        for flat in idx.tolist():
            owners.setdefault(owner, []).append((attr, flat, column))
            column += 1
    n = x.shape[0]
    deltas = [torch.zeros(n, dtype=x.dtype, device=x.device, requires_grad=True) for _ in range(column)]
    busy: list[bool] = []
    called: set[str] = set()
    unsupported: list[str] = []

    def perturb(module, args, output):
        if busy:  # jvp's own call of the module
            return None
        if not (isinstance(output, torch.Tensor) and len(args) == 1 and isinstance(args[0], torch.Tensor)):
            unsupported.append(names[module])  # several inputs, or an output that is not one tensor
            return None
        called.add(names[module])
        busy.append(True)
        try:
            for attr, flat, k in owners[names[module]]:
                channel, tangent = _tangent(module, attr, flat, args[0], output)
                shape = (n,) + (1,) * (tangent.dim() - 1)
                if channel < 0:
                    output = output + deltas[k].view(shape) * tangent
                else:
                    moved = deltas[k].view(shape) * tangent
                    output = output.index_add(1, torch.tensor([channel], device=x.device), moved.unsqueeze(1))
        finally:
            busy.clear()
        return output

    names = {modules[o]: o for o in owners}
    wanted = {k: v.requires_grad for k, v in net.named_parameters()}
    try:
        for v in net.parameters():
            v.requires_grad_(False)  # only the deltas' gradients: no weight gradients are formed
        with torch.enable_grad():
            with rewriting_outputs({modules[o]: perturb for o in owners}):
                logits = _logits(net(x))
            if unsupported or len(called) < len(owners):
                return None  # a parameter this path cannot follow (or one its module's forward never used)
            classes = logits.shape[1]
            jac = torch.zeros(n, classes, column, dtype=x.dtype, device=x.device)
            for c in range(classes):
                grads = torch.autograd.grad(logits[:, c].sum(), deltas, retain_graph=c < classes - 1,
                                            allow_unused=True)
                for k, g in enumerate(grads):
                    if g is not None:
                        jac[:, c, k] = g
    finally:
        for k, v in net.named_parameters():
            v.requires_grad_(wanted[k])
    return jac.detach()


def per_sample_jacobian(net: nn.Module, x: torch.Tensor, chosen: list[tuple[str, torch.Tensor]],
                        method: str = "vmap") -> torch.Tensor:
    """J (batch, classes, P): d logits(x_i) / d theta for each sample alone (the network's current
    mode), theta = the scalars ``chosen`` in order.  ``method``: ``vmap`` (as released) or
    ``per_class`` (the same values to rounding, faster; see :func:`_jacobian_per_class`).  A
    BatchNorm that normalises with batch statistics in this mode couples the samples, a parameter
    shared by two modules has two owners, and a module may own a selected parameter but never run
    or run on several inputs: ``per_class`` then falls back to ``vmap``."""
    if method not in JACOBIANS:
        raise ValueError(f"jacobian={method!r}; valid: {list(JACOBIANS)}")
    coupled = any(isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or m.running_mean is None)
                  for m in net.modules())
    # a tensor shared by several modules: the perturbation would see one owner's use of it only
    every = [v for _, v in net.named_parameters(remove_duplicate=False)]
    tied = len({id(v) for v in every}) < len(every)
    jac = None if method == "vmap" or coupled or tied else _jacobian_per_class(net, x, chosen)
    return _jacobian_vmap(net, x, chosen) if jac is None else jac


def covariance_factor(logits: torch.Tensor) -> torch.Tensor:
    """L (batch, C, C), lower triangular, L L^T = diag(p) - p p^T for the smoothed softmax p, in
    the released arithmetic (float16 smoothing constants, closed form).

    >>> logits = torch.tensor([[0.5, -1.0, 2.0]])
    >>> factor = covariance_factor(logits)[0]
    >>> bool((factor.triu(1) == 0).all()), factor[-1, -1].item()
    (True, 0.0)
    >>> p = 0.95 * torch.softmax(logits[0], 0) + 0.05 / 3
    >>> bool(torch.allclose(factor @ factor.T, torch.diag(p) - torch.outer(p, p), atol=1e-3))
    True
    """
    alpha = torch.tensor(0.05, dtype=torch.float16, device=logits.device)
    c = logits.shape[1]
    prob = torch.softmax(logits, dim=1) * (1 - alpha) + alpha / c
    q = 1 - torch.cumsum(prob, dim=1)
    q[:, -1] = 0
    q_prev = torch.roll(q, shifts=1, dims=1)
    q_prev[:, 0] = 1
    d = torch.sqrt(prob * q / q_prev)
    below = torch.nan_to_num(-(prob.unsqueeze(2) * (1 / q).unsqueeze(1)), neginf=0.0)
    eye = torch.eye(c, device=logits.device, dtype=logits.dtype)
    lower = torch.tril(torch.ones(c, c, device=logits.device, dtype=logits.dtype), diagonal=-1)
    return (below * lower + eye) * d.unsqueeze(1)


def fisher_matrix(jacobian: torch.Tensor, factor: torch.Tensor, kind: str = "released") -> torch.Tensor:
    """mean_i (L_i J_i)^T (L_i J_i) (released) or mean_i (L_i^T J_i)^T (L_i^T J_i) (exact)."""
    lj = torch.matmul(factor if kind == "released" else factor.transpose(1, 2), jacobian)
    return torch.mean(torch.matmul(lj.transpose(1, 2), lj), dim=0)


def decile_entropy(fisher: torch.Tensor) -> torch.Tensor:
    """The entropy of the L1-normalised deciles of the singular values of ``fisher``."""
    try:
        lambdas = torch.linalg.svd(fisher, full_matrices=False).S
    except torch.linalg.LinAlgError:  # released behaviour: spectrum [0, 0], score 0
        lambdas = torch.zeros(2, device=fisher.device, dtype=fisher.dtype)
    q = torch.quantile(lambdas, torch.arange(0.1, 1.0, 0.1, device=lambdas.device).to(lambdas.dtype))
    q = q / (torch.linalg.norm(q, ord=1).item() + 1e-10)
    return -(q * torch.log(q + 1e-10)).sum()


class VKDNW:
    """The VKDNW entropy: see the module docstring."""

    def __init__(self, *, inputs: str = "noise", init: str = "kaiming", tensors: int = 128, p: int = 1,
                 fisher: str = "released", jacobian: str = "vmap",
                 precision: str = "float32") -> None:
        if inputs not in INPUTS:
            raise ValueError(f"inputs={inputs!r}; valid: {list(INPUTS)}")
        if init not in INITS:
            raise ValueError(f"init={init!r}; valid: {list(INITS)}")
        if fisher not in FISHERS:
            raise ValueError(f"fisher={fisher!r}; valid: {list(FISHERS)}")
        if jacobian not in JACOBIANS:
            raise ValueError(f"jacobian={jacobian!r}; valid: {list(JACOBIANS)}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}; valid: {list(PRECISIONS)}")
        if int(tensors) < 1:
            raise ValueError(f"tensors={tensors}: the number of parameter tensors sampled must be >= 1")
        if int(p) < 1:
            raise ValueError(f"p={p} selects no element of any tensor (the released default p=0 does this); "
                             "p=1 (element 0 of each tensor) is the paper's variant")
        self.inputs, self.init, self.tensors, self.p, self.fisher = inputs, init, int(tensors), int(p), fisher
        self.jacobian, self.precision = jacobian, precision

    def attach(self, session) -> None:  # a private pass: everything happens in finish
        pass

    def finish(self, session):
        net, x = session.net, session.inputs
        gen = session.generator()
        if self.init == "kaiming":
            kaiming_init_(net, gen)
        if self.inputs == "noise":
            x = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        net.eval()
        if self.precision == "float64":  # the same weights and inputs (drawn as above), exact arithmetic
            net, x = net.double(), x.double()
        chosen = selected_scalars(net, self.tensors, self.p)
        with torch.no_grad():
            logits = _logits(net(x))
        jacobian = per_sample_jacobian(net, x, chosen, self.jacobian)
        fisher = fisher_matrix(jacobian, covariance_factor(logits), self.fisher)
        return decile_entropy(fisher), 0


class VKDNWDim:
    """aleph: the number of named parameter tensors (``len(list(net.named_parameters()))``)."""

    def attach(self, session) -> None:
        pass

    def finish(self, session):
        return float(len(list(session.net.named_parameters()))), 0


register("vkdnw", params={"inputs": "noise", "init": "kaiming", "tensors": 128, "p": 1, "fisher": "released",
                          "jacobian": "vmap", "precision": "float32"},
         higher_is_better=True, needs_labels=False, bn=True, pass_kind="vkdnw",
         description="VKDNW: entropy of the normalised deciles of the singular values of the Fisher of element 0 "
                     "of the first 128 parameter tensors (kaiming init, noise, BN eval; Tybl & Neumann 2025)")(VKDNW)
register("vkdnw_dim", higher_is_better=True, needs_labels=False, bn=True, pass_kind="static",
         description="VKDNW's aleph: the number of named parameter tensors (ranked before vkdnw in VKDNW_single)")(VKDNWDim)
