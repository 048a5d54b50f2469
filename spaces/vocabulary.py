"""The shared vocabulary of spaces, proxies and the harness.

The words every layer uses to talk to the others: the error types, the response conventions and
the response point a space states for the correlation proxies, and the type of an architecture's
key.  This module imports nothing from the project (and nothing heavy: ``torch`` only for type
checking), so any layer may import it without loading a search space.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["ArchKey", "Convention", "CONVENTIONS", "ResponsePoint", "InvalidArchitectureError", "DataFileError",
           "MissingDataFileError", "UnknownNameError", "StackedSink"]

#: an architecture's canonical string (``Space.to_str``): its key in stores, tables and trackers
ArchKey = str

#: which response points a correlation proxy reads: ``paper`` (the paper's formula: every ReLU's
#: input and the gradient there) or ``official`` (exactly what the released code hooks)
Convention = Literal["paper", "official"]
CONVENTIONS: tuple[str, ...] = ("paper", "official")


class InvalidArchitectureError(ValueError):
    """An architecture (string, mapping or value) is not a member of the space; the message says why."""


class DataFileError(RuntimeError):
    """A benchmark or image file is missing, unreadable or fails its checksum."""


class MissingDataFileError(DataFileError):
    """A data file is not in the data directory (the directory itself exists)."""


class UnknownNameError(KeyError):
    """A name (proxy, space, dataset, split) is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ResponsePoint:
    """One place in a network whose responses the correlation proxies read (a space states them:
    ``Space.response_modules``).

    ``module`` is hooked (by the probe, the one owner of hooks); ``layer`` is the index used by
    layer weightings (0 = shallowest).  ``activation`` says which tensor is the activation
    response: the module's ``input`` (the pre-activation of a ReLU) or its ``output``.  The
    gradient response is always the gradient with respect to the first input of the module's
    *last* autograd node: for a ReLU that is the gradient at the ReLU's input; for a wrapper (the
    released WRCor code hooks ``ReLUConvBN``) it is the gradient at the input of its last operation.
    """

    name: str
    module: "nn.Module"
    layer: int
    activation: Literal["input", "output"] = "input"


class StackedSink(Protocol):
    """Where a space's stacked pass (a group of networks run as one, for the scoring engine)
    reports its responses.  A response tensor has the batch on dimension 0 and the reporting
    networks on dimension 1; ``idx`` names those networks' positions in the group (None: all of
    them); ``mult`` maps each convention that counts the response to its multiplicity (a float,
    or a float64 tensor with one entry per reporting network).  The space says *where* its
    responses are; the proxies' side (the probe) owns every hook."""

    def activation(self, layer: int, t: "torch.Tensor", idx: "torch.Tensor | None", mult: dict) -> None:
        """``t`` is an activation response at weighting layer ``layer``."""

    def gradient_at(self, t: "torch.Tensor", layer: int, idx: "torch.Tensor | None", mult: dict, m: int) -> None:
        """The gradient at the first input of ``t``'s autograd node (``m`` networks' worth of
        channels) is a gradient response at ``layer``."""
