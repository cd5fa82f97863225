"""The product loss as a method (Burns et al. 2023's public reference code, ``product_loss_fn``)."""

from __future__ import annotations

from overseer.w2s.methods.base import Method, w2s_method
from overseer.w2s.methods.losses import LossMethod


@w2s_method("product")
def product(alpha: float = 1.0, beta: float = 1.0, warmup_frac: float = 0.0) -> Method:
    """Train the student towards the normalised product ``weak ** alpha * student ** beta``.

    Reference: the ``product_loss_fn`` of openai/weak-to-strong (Burns et al. 2023, "Weak-to-strong
    generalization", arXiv:2312.09390), a product-of-experts target that, like the confidence loss,
    lets a confident student overrule a weak label it disagrees with. ``alpha`` weighs the weak
    supervisor, ``beta`` the student; see :class:`overseer.w2s.losses.ProductLoss` for the exact
    target and the optional ``warmup_frac`` (0, the reference behaviour, by default).
    """
    return LossMethod("product", {"alpha": alpha, "beta": beta, "warmup_frac": warmup_frac})
