"""Argument checks shared by the whole package.

Every public function of ``qteach`` validates its input with these helpers, so that bad input raises a
``TypeError`` or ``ValueError`` naming the argument and what was expected, instead of returning garbage.
"""

from __future__ import annotations

import numbers

import torch


def require_tensor(value, name: str) -> torch.Tensor:
    """Return ``value`` if it is a ``torch.Tensor``; raise ``TypeError`` naming ``name`` otherwise."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def require_float_tensor(value, name: str) -> torch.Tensor:
    """A tensor with a floating-point dtype (float16, bfloat16, float32, float64)."""
    require_tensor(value, name)
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    return value


def require_finite(value: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if ``value`` holds NaN (or, for ranges, infinity)."""
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    return value


def require_no_nan(value: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if ``value`` holds NaN (infinity is allowed: it saturates)."""
    if value.is_floating_point() and bool(torch.isnan(value).any()):
        raise ValueError(f"{name} must not contain NaN")
    return value


def require_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """A Python (or NumPy) integer, not a bool, optionally within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def require_positive_number(value, name: str) -> float:
    """A real number (not a bool) that is > 0 and finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (value > 0 and value != float("inf")):
        raise ValueError(f"{name} must be > 0 and finite, got {value}")
    return float(value)


def require_bits(value, name: str = "bits") -> int:
    """A bit width: an int in [1, 32]."""
    return require_int(value, name, minimum=1, maximum=32)


def require_bool(value, name: str) -> bool:
    """A real ``bool`` (not a truthy number or string)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def require_ndim(value: torch.Tensor, name: str, ndim: int) -> torch.Tensor:
    """A tensor with exactly ``ndim`` dimensions."""
    if value.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(value.shape)}")
    return value


def require_bn_parameters(gamma, beta, mean, var) -> None:
    """Batch-norm parameters given as tensors: floating point, 1-D (one value per channel), finite, all of one
    shape, and ``var >= 0``; raise ``TypeError``/``ValueError`` naming the first one that is not."""
    for value, name in ((gamma, "gamma"), (beta, "beta"), (mean, "mean"), (var, "var")):
        require_float_tensor(value, name)
        if value.dim() != 1:
            raise ValueError(f"{name} must be 1-D (one value per neuron), got shape {tuple(value.shape)}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} must be finite")
    if not gamma.shape == beta.shape == mean.shape == var.shape:
        raise ValueError("gamma, beta, mean and var must have the same shape, got "
                         f"{tuple(gamma.shape)}, {tuple(beta.shape)}, {tuple(mean.shape)}, {tuple(var.shape)}")
    if bool((var < 0).any()):
        raise ValueError("var must be >= 0")


def require_float_input(value, name: str) -> torch.Tensor:
    """A floating-point tensor without NaN (infinity allowed: quantizers saturate it)."""
    require_float_tensor(value, name)
    return require_no_nan(value, name)


def require_weights(value, name: str = "w") -> torch.Tensor:
    """A floating-point weight tensor: not empty, every entry finite."""
    require_float_tensor(value, name)
    if value.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    require_no_nan(value, name)
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite")
    return value
