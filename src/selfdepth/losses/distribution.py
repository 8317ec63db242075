"""Barron's robust loss as a probability distribution: its density and a sampler.

    p(x | alpha, c) = exp(-rho(x, alpha, c)) / (c Z(alpha)),   alpha in [0, +inf], c > 0

At alpha = 0 this is a Cauchy (Lorentzian) distribution with scale c sqrt(2);
at alpha = 2 a normal distribution with standard deviation c. The adaptive loss
(``AdaptiveRobustLoss``) is its negative log-likelihood.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from selfdepth.losses.log_partition import log_partition
from selfdepth.losses.robust import general

__all__ = ["nll", "sample"]


def nll(x: Tensor, alpha: Tensor | float, c: Tensor | float) -> Tensor:
    """-log p(x | alpha, c), per element (alpha in [0, inf], c > 0; broadcast with ``x``)."""
    alpha = torch.as_tensor(alpha, dtype=x.dtype, device=x.device)
    c = torch.as_tensor(c, dtype=x.dtype, device=x.device)
    return general(x, alpha, c) + torch.log(c) + log_partition(alpha)


def sample(
    alpha: Tensor | float, c: Tensor | float, shape: tuple[int, ...], generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Draw samples of ``shape`` from p(x | alpha, c) by rejection sampling (as robust_loss_pytorch does).

    The proposal is the alpha = 0 member, a Cauchy with scale sqrt(2) (times c at the end):
    rho(x, alpha, 1) >= rho(x, 0, 1) for alpha >= 0, so exp(rho_0 - rho_alpha) <= 1 is a valid
    acceptance probability. It accepts Z(alpha) / Z(0) of the proposals: 100% at alpha = 0, 45% at +inf.

    Args:
        alpha: shape, a float or a tensor broadcastable to ``shape``, in [0, +inf].
        c: scale > 0, a float or a tensor broadcastable to ``shape``.
        shape: output shape.
        generator: for reproducible draws.
        dtype: of the output.
    """
    alpha_t = torch.as_tensor(alpha, dtype=dtype).expand(shape)
    c_t = torch.as_tensor(c, dtype=dtype).expand(shape)
    if (~(alpha_t >= 0)).any() or (c_t <= 0).any():
        raise ValueError("sample needs alpha in [0, inf] and c > 0")
    out = torch.empty(shape, dtype=dtype)
    todo = torch.ones(shape, dtype=torch.bool)
    while todo.any():
        n = int(todo.sum())
        # Cauchy(0, sqrt 2) by inversion: sqrt(2) tan(pi (u - 1/2)).
        u = torch.rand(n, dtype=dtype, generator=generator)
        proposal = math.sqrt(2) * torch.tan(math.pi * (u - 0.5))
        a = alpha_t[todo]
        log_accept = general(proposal, 0.0, 1.0) - general(proposal, a, 1.0)  # <= 0
        accept = torch.rand(n, dtype=dtype, generator=generator).log() <= log_accept
        idx = todo.nonzero(as_tuple=True)
        chosen = tuple(i[accept] for i in idx)
        out[chosen] = proposal[accept]
        todo[chosen] = False
    return out * c_t
