"""SynFlow (Tanaka et al., "Pruning neural networks without any data by iteratively conserving
synaptic flow", NeurIPS 2020), as the zero-cost-proxy code computes it (the official WRCor
release's ``synflow``, taken over from SamsungLabs' zero-cost-nas; NASLib's is the same):

- BN off (``bn=False``): the private copy has its BatchNorm layers replaced by identities (the
  reference builds the network without BN; NASLib makes BN's forward a no-op: the same thing);
- the copy is converted to float64 and every entry of its ``state_dict`` (parameters AND
  buffers) is replaced by its absolute value;
- the input is one all-ones sample of the batch's shape (the batch's values are not used, so no
  labels either); ``R = sum(net(ones))``, one backward;
- score = ``sum over conv/linear weights of |W * dR/dW|``, added layer by layer in float64.

Differences from the paper.  The paper's SynFlow is a one-shot score of an *iterative* pruning
method (the score is recomputed after each pruning round), and it has no BN; as a zero-cost proxy
only the first round's score, summed over the network, is used, and BN is simply removed.  The
values are huge (up to ~1e44 on a C=16 NB201 net): compare them by rank or relative error.
"""
from __future__ import annotations

import torch

from .probe import weight_layers
from .pruning import sum_layers
from .registry import register


class Synflow:
    """``sum |W * dR/dW|`` of the all-positive float64 network on an all-ones input."""

    def attach(self, session) -> None:
        pass

    def finish(self, session):
        net = session.net.double()  # private copy, BN already removed (bn=False)
        net.train()
        with torch.no_grad():
            for t in net.state_dict().values():
                t.abs_()
        net.zero_grad(set_to_none=True)
        ones = torch.ones((1, *session.inputs.shape[1:]), dtype=torch.float64, device=session.device)
        torch.sum(net(ones)).backward()
        terms = []
        for layer in weight_layers(net):
            w, g = layer.weight.detach(), layer.weight.grad
            terms.append(torch.zeros_like(w) if g is None else torch.abs(w * g))
        return sum_layers(terms), 0


register("synflow", higher_is_better=True, needs_labels=False, bn=False, pass_kind="synflow",
         description="SynFlow: sum over conv/linear weights of |W * dR/dW|, R = sum of the output of "
                     "the |state|, BN-free, float64 network on an all-ones input")(Synflow)
