"""The Probe: the one owner of hooks.  It runs a network once and feeds every proxy that needs
that pass.

A computation works on a private deep copy of the caller's network (so the caller's weights,
gradients, buffers, hooks and train/eval mode are untouched), in train mode, with the hooks it
installed removed afterwards.  Everything stays on the inputs' device: hooks do tensor work only
(no numpy, no ``.cpu()``, no ``.item()``); the single host synchronisation is when the final
scores are read.

Proxies plug in through two calls (see :class:`Proxy`): ``attach(session)`` before the pass, to ask
for what they need (correlation matrices of responses, a module's output and the gradient there),
and ``finish(session)`` after it, reading the pass's results (``session.outputs``, ``loss``,
``input_grad``, the private net's parameter gradients).

Pass kinds (``ProxyInfo.pass_kind``).  Proxies with the same *shared* kind and BN setting run in
ONE session:

- ``standard``: forward the real batch, cross-entropy loss, backward (parameter gradients);
- ``input_jacobian``: forward with ``inputs.requires_grad``, backward of ``sum(outputs)``
  (``session.input_grad`` = d sum(y) / dx, the NASWOT/EPE-NAS Jacobian);
- ``forward``: a forward pass only, under ``torch.no_grad``;
- ``static``: no pass (the proxy reads the network itself).

Any other kind names a *private* pass (synflow's all-ones double pass, GraSP's Hessian-gradient
pass, ...): the proxy gets a session of its own and does its whole computation in ``finish``.
"""
from __future__ import annotations

import copy
import math
import time
import weakref
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spaces.vocabulary import Convention, ResponsePoint

# (point, kind, |C|, bad) where kind is "act" or "grad", |C| the N x N absolute correlation
# matrix and bad a 0-dim bool tensor: True when C has a NaN (a constant sample row).
CorrelationCallback = Callable[[ResponsePoint, str, torch.Tensor, torch.Tensor], None]
#: (net, convention) -> the network's response points: a space's ``response_modules``
ResponseProvider = Callable[[nn.Module, Convention], list[ResponsePoint]]


@dataclass
class ProxyOutcome:
    """What one proxy gave for one network: a value or a recorded failure."""

    value: float
    status: str  # "ok" | "nan" | "inf" | "error" | "oom"
    seconds: float
    n_skipped: int = 0
    message: str = ""


class Proxy(Protocol):
    def attach(self, session: "Session") -> None: ...

    def finish(self, session: "Session") -> tuple[torch.Tensor | float, torch.Tensor | int]:
        """(value, number of skipped response matrices), tensors allowed (read once, at the end)."""


def _row_correlation(z: torch.Tensor) -> torch.Tensor:
    """Correlation between the rows of ``z`` (..., samples, features), clipped to [-1, 1]: the
    arithmetic of ``numpy.corrcoef`` (in ``z``'s dtype), for one matrix or a batch of them."""
    z = z - z.mean(dim=-1, keepdim=True)
    g = z @ z.transpose(-2, -1)
    std = torch.diagonal(g, dim1=-2, dim2=-1).sqrt()
    return (g / std[..., :, None] / std[..., None, :]).clamp_(-1.0, 1.0)


def corrcoef(x: torch.Tensor, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed correlation between the rows (samples) of ``x`` flattened per row, and a NaN flag.

    Matches ``numpy.corrcoef`` (which computes in float64 and clips to [-1, 1]); a row that is
    constant makes its row and column NaN, and the 0-dim flag says so without a host sync.
    """
    c = _row_correlation(x.reshape(x.shape[0], -1).to(dtype))
    return c, torch.isnan(c).any()


def batched_abs_correlation(t: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """|corr| between the samples of each of m networks: ``t`` is (samples, m, ...); returns the
    (m, samples, samples) matrices and an (m,) flag of those with a NaN (a constant sample)."""
    n, m = t.shape[0], t.shape[1]
    c = _row_correlation(t.reshape(n, m, -1).transpose(0, 1).to(dtype)).abs_()
    return c, torch.isnan(c).flatten(1).any(1)


def abs_correlation(x: torch.Tensor, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """|corr| between the rows (samples) of ``x`` (see :func:`corrcoef`), and a NaN flag."""
    c, bad = corrcoef(x, dtype)
    return c.abs_(), bad


def every_relu(net: nn.Module, convention: Convention = "paper") -> list[ResponsePoint]:
    """A response rule for a network that no space built: every ``nn.ReLU``'s input, its weighting
    layer being the index of the top-level child that contains it.  The two conventions differ
    only inside a space's networks (``official`` is what the released code hooks there): for a
    network no space built both mean every ReLU."""
    points = []
    for layer, (child_name, child) in enumerate(net.named_children()):
        for name, m in child.named_modules():
            if isinstance(m, nn.ReLU):
                points.append(ResponsePoint(f"{child_name}.{name}".rstrip("."), m, layer))
    return points


def no_responses(net: nn.Module, convention: Convention) -> list[ResponsePoint]:
    """The response rule of a pass that was given none: a proxy that reads responses is told how
    to give them."""
    raise ValueError("this proxy reads the responses a space states: pass space=<the space that built the network> "
                     "(its response_modules), or responses=proxies.every_relu for a network no space built")


def on_input_gradient(t: torch.Tensor, fn: Callable[[torch.Tensor], None]) -> None:
    """During the backward pass, call ``fn`` with the gradient at the first input of ``t``'s
    autograd node (for a ReLU's output: the gradient at the ReLU's input; for a BN's output: at
    the BN's input).  A hook on the node, not on a tensor: per use, unlike a tensor hook on an
    input that several edges share.  Nothing happens when ``t`` has no autograd node."""
    if t.grad_fn is None:
        return

    def hook(grad_inputs, grad_outputs):
        g = grad_inputs[0]
        if g is not None:
            fn(g)

    t.grad_fn.register_hook(hook)


def on_tensor_gradient(t: torch.Tensor, fn: Callable[[torch.Tensor], None]) -> None:
    """During the backward pass, call ``fn`` with the gradient with respect to ``t`` itself
    (detached; summed over every use of ``t``).  A tensor hook: gone with the graph."""
    t.register_hook(lambda g: fn(g.detach()))


@contextmanager
def watching(points: Sequence[ResponsePoint], *, on_activation: Callable[[ResponsePoint, torch.Tensor], None] | None = None,
             on_gradient: Callable[[ResponsePoint, torch.Tensor], None] | None = None) -> Iterator[None]:
    """Within the block, call ``on_activation(point, tensor)`` with each point's activation
    response as the forward pass reaches it, and ``on_gradient(point, grad)`` with its gradient
    response (see :class:`~spaces.vocabulary.ResponsePoint`) during the backward pass; every hook
    is removed on exit."""
    def make(point: ResponsePoint):
        def forward_hook(module, args, output):
            if on_activation is not None:
                on_activation(point, args[0] if point.activation == "input" else output)
            if on_gradient is not None and isinstance(output, torch.Tensor):
                on_input_gradient(output, lambda g: on_gradient(point, g.detach()))
        return forward_hook

    handles = [p.module.register_forward_hook(make(p)) for p in points]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def rewriting_outputs(hooks: dict[nn.Module, ModuleForwardHook]) -> Iterator[None]:
    """Within the block, ``hook(module, args, output)`` runs after each module of ``hooks`` runs;
    a hook that returns a tensor replaces that call's output (``None`` keeps it).  Every hook is
    removed on exit.  (VKDNW's per-class Jacobian adds its perturbations this way.)"""
    handles = [m.register_forward_hook(h) for m, h in hooks.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class TensorCache:
    """Results of ``compute(tensor)`` for tensors already seen in this pass (edges sharing a source
    node share them).

    Keyed on the tensor's storage, version and geometry (plus ``extra``), and guarded by a weak
    reference to the tensor itself, so a freed tensor whose memory is reused never gives a false
    hit."""

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[weakref.ref, Any]] = {}

    def get(self, t: torch.Tensor, compute: Callable[[torch.Tensor], Any], *extra: Any) -> Any:
        key = (t.data_ptr(), t._version, tuple(t.shape), tuple(t.stride()), t.storage_offset(), t.dtype, *extra)
        hit = self._entries.get(key)
        if hit is not None and hit[0]() is t:
            return hit[1]
        value = compute(t.detach())
        self._entries[key] = (weakref.ref(t), value)
        return value

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class _Consumer:
    callback: CorrelationCallback
    activations: bool
    gradients: bool
    dtype: torch.dtype


SHARED_PASSES = ("standard", "input_jacobian", "forward", "static")
ModuleForwardHook = Callable[[nn.Module, tuple, Any], None]
GradHook = Callable[[torch.Tensor], None]


def is_shared_pass(kind: str) -> bool:
    return kind in SHARED_PASSES


def weight_layers(net: nn.Module) -> list[nn.Module]:
    """The layers pruning-style proxies sum over: every ``Conv2d`` and ``Linear``, in
    ``net.modules()`` order (the zero-cost-proxy convention)."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def without_batchnorm(net: nn.Module) -> nn.Module:
    """``net`` (modified in place: call it on a private copy) with every BatchNorm replaced by
    an identity, the "BN off" setting of synflow."""
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            without_batchnorm(child)
    return net


class Session:
    """One pass of a private copy of a network, shared by several proxies.

    ``bn=False`` replaces the copy's BatchNorm layers by identities.  ``seed`` is the seed of
    proxies that draw random numbers (their own generator: the global RNG is never touched).
    """

    def __init__(self, net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, *,
                 loss_fn: Callable = F.cross_entropy, responses: ResponseProvider = no_responses,
                 pass_kind: str = "standard", bn: bool = True, seed: int = 0) -> None:
        self.net = copy.deepcopy(net)
        if not bn:
            without_batchnorm(self.net)
        self.inputs = inputs
        self.targets = targets
        self.loss_fn = loss_fn
        self.device = inputs.device
        self.pass_kind = pass_kind
        self.bn = bn
        self.seed = int(seed)
        self._responses = responses
        self._consumers: dict[str, list[_Consumer]] = {}
        self._points: dict[str, list[ResponsePoint]] = {}
        self._module_hooks: list[tuple[nn.Module, ModuleForwardHook | None, GradHook | None]] = []
        self.outputs: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None
        self.input_grad: torch.Tensor | None = None

    def generator(self, offset: int = 0) -> torch.Generator:
        """A fresh generator on the session's device seeded with ``seed + offset``."""
        return torch.Generator(device=self.device).manual_seed(self.seed + offset)

    # -- what proxies ask for
    def response_points(self, convention: Convention) -> list[ResponsePoint]:
        if convention not in self._points:
            self._points[convention] = list(self._responses(self.net, convention))
        return self._points[convention]

    def on_correlation(self, convention: Convention, callback: CorrelationCallback, *,
                       activations: bool = True, gradients: bool = True,
                       dtype: torch.dtype = torch.float64) -> None:
        """Call ``callback`` with |C| (computed in ``dtype``) of every response of ``convention``
        during the pass."""
        self._consumers.setdefault(convention, []).append(_Consumer(callback, activations, gradients, dtype))

    def on_module(self, module: nn.Module, *, forward: ModuleForwardHook | None = None,
                  output_grad: GradHook | None = None) -> None:
        """During the pass, call ``forward(module, args, output)`` after ``module`` runs and
        ``output_grad(grad)`` with the gradient w.r.t. its output (a tensor hook: the gradient
        summed over every use of that output).  ``module`` must belong to ``session.net``."""
        self._module_hooks.append((module, forward, output_grad))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """For a private pass: ``net(x)`` under ``no_grad`` with the ``on_module`` hooks installed
        (and removed afterwards)."""
        with self._module_hooks_installed(), torch.no_grad():
            return self.net(x)

    @contextmanager
    def _module_hooks_installed(self) -> Iterator[None]:
        handles = [m.register_forward_hook(_module_hook(f, g)) for m, f, g in self._module_hooks]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    # -- the pass
    def run(self) -> None:
        """Run the session's pass (nothing for ``static`` and private kinds)."""
        if not is_shared_pass(self.pass_kind) or self.pass_kind == "static":
            return
        net = self.net
        net.train()
        net.zero_grad(set_to_none=True)
        cache = TensorCache()
        try:
            with ExitStack() as hooks:
                for convention, consumers in self._consumers.items():
                    act, grad = self._correlators(consumers, cache)
                    hooks.enter_context(watching(self.response_points(convention), on_activation=act, on_gradient=grad))
                hooks.enter_context(self._module_hooks_installed())
                if self.pass_kind == "standard":
                    self.outputs = net(self.inputs)
                    self.loss = self.loss_fn(self.outputs, self.targets)
                    self.loss.backward()
                elif self.pass_kind == "input_jacobian":
                    x = self.inputs.detach().clone().requires_grad_(True)
                    self.outputs = net(x)
                    self.outputs.backward(torch.ones_like(self.outputs))
                    self.input_grad = x.grad.detach()
                else:  # forward
                    with torch.no_grad():
                        self.outputs = net(self.inputs)
        finally:
            cache.clear()

    @staticmethod
    def _correlators(consumers: Sequence[_Consumer], cache: TensorCache):
        """(on_activation, on_gradient) feeding |C| of each response to the consumers that want it,
        computed once per dtype (activations a source node shares: once per pass, via ``cache``)."""
        want_act = [c for c in consumers if c.activations]
        want_grad = [c for c in consumers if c.gradients]

        def on_activation(point: ResponsePoint, t: torch.Tensor) -> None:
            for consumer in want_act:
                consumer.callback(point, "act", *cache.get(t, partial(abs_correlation, dtype=consumer.dtype),
                                                             consumer.dtype))

        def on_gradient(point: ResponsePoint, g: torch.Tensor) -> None:
            done: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
            for consumer in want_grad:
                if consumer.dtype not in done:
                    done[consumer.dtype] = abs_correlation(g, consumer.dtype)
                consumer.callback(point, "grad", *done[consumer.dtype])

        return (on_activation if want_act else None), (on_gradient if want_grad else None)


def _module_hook(forward: ModuleForwardHook | None, output_grad: GradHook | None):
    def hook(module, args, output):
        if forward is not None:
            forward(module, args, output)
        if output_grad is not None and isinstance(output, torch.Tensor) and output.requires_grad:
            on_tensor_gradient(output, output_grad)

    return hook


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so wall-clock times are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def outcome_of(value: float, seconds: float, n_skipped: int, message: str = "") -> ProxyOutcome:
    """A computed value's outcome; ``message`` says why when it is not finite."""
    status = "ok" if math.isfinite(value) else ("nan" if math.isnan(value) else "inf")
    return ProxyOutcome(value, status, seconds, n_skipped, message if status != "ok" else "")


def _cause(proxy: Proxy, value: float, n_skipped: int) -> str:
    """The proxy's own explanation of a non-finite value, if it has one."""
    explain = getattr(proxy, "cause", None)
    if math.isfinite(value):
        return ""
    return explain(value, n_skipped) if explain is not None else f"the proxy returned {value}"


def run_pass(proxies: dict[str, Proxy], net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None,
             **session_kw: Any) -> dict[str, ProxyOutcome]:
    """Run one shared pass for ``proxies`` (name -> proxy object); failures become outcomes.

    The pass's wall time (synchronised on a GPU) is recorded for every proxy that shared it.
    """
    start = time.perf_counter()
    try:
        session = Session(net, inputs, targets, **session_kw)
        for proxy in proxies.values():
            proxy.attach(session)
        session.run()
        raw = {name: proxy.finish(session) for name, proxy in proxies.items()}
        # the one host sync: read every value at once
        values = {name: (float(v), int(k)) for name, (v, k) in raw.items()}
    except Exception as err:  # recorded, never swallowed: the caller sees status and message
        seconds = time.perf_counter() - start
        status = "oom" if _is_oom(err) else "error"
        if status == "oom" and inputs.device.type == "cuda":
            torch.cuda.empty_cache()
        msg = f"{type(err).__name__}: {err}"
        return {name: ProxyOutcome(math.nan, status, seconds, 0, msg) for name in proxies}
    synchronize(inputs.device)
    seconds = time.perf_counter() - start
    return {name: outcome_of(v, seconds, k, _cause(proxies[name], v, k)) for name, (v, k) in values.items()}
