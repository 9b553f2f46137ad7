"""Argument checks shared by the whole package.

Every public function of ``qteach`` validates its input with these helpers, so that bad input raises a
``TypeError`` or ``ValueError`` naming the argument and what was expected, instead of returning garbage.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn


def require_tensor(value, name: str) -> torch.Tensor:
    """Return ``value`` if it is a ``torch.Tensor``; raise ``TypeError`` naming ``name`` otherwise."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def require_module(value, name: str = "model") -> nn.Module:
    """A ``torch.nn.Module``."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def require_integer_tensor(value, name: str) -> torch.Tensor:
    """A tensor with an integer dtype (not bool)."""
    require_tensor(value, name)
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {value.dtype}")
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


def require_positive_number(value, name: str, maximum: float | None = None) -> float:
    """A real number (not a bool) that is > 0 and finite (and at most ``maximum`` where one is given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (value > 0 and value != float("inf")):
        raise ValueError(f"{name} must be > 0 and finite, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be in (0, {maximum}], got {value!r}")
    return float(value)


def require_optional_positive_number(value, name: str, maximum: float | None = None) -> float | None:
    """``None`` (the option is off) or a number as :func:`require_positive_number` accepts it."""
    return None if value is None else require_positive_number(value, name, maximum)


def require_non_negative_number(value, name: str) -> float:
    """A real number (not a bool) that is >= 0 and finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def require_str(value, name: str) -> str:
    """A ``str``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def require_optional_callable(value, name: str):
    """``None`` or a callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {type(value).__name__}")
    return value


def require_pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as a pair (a convolution's kernel size, stride, padding)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return tuple(require_int(v, name, minimum=minimum) for v in value)
    value = require_int(value, name, minimum=minimum)
    return value, value


def require_shape(value, name: str) -> tuple[int, ...]:
    """A tensor shape: a tuple or list of positive ints (``ValueError`` otherwise)."""
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in value):
        raise ValueError(f"{name} must be a tuple of positive ints, got {value!r}")
    return tuple(int(d) for d in value)


def require_bits(value, name: str = "bits") -> int:
    """A bit width: an int in [1, 32]."""
    return require_int(value, name, minimum=1, maximum=32)


def require_binary_layer_bits(w_bits, a_bits) -> None:
    """The bit widths of a binary layer's ``comparison_layer``: ``w_bits`` and ``a_bits`` both exactly 1."""
    if require_int(w_bits, "w_bits", minimum=1) != 1 or require_int(a_bits, "a_bits", minimum=1) != 1:
        raise ValueError(f"w_bits and a_bits must be 1 (a binary layer), got {w_bits} and {a_bits}")


def require_bool(value, name: str) -> bool:
    """A real ``bool`` (not a truthy number or string)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def require_not_empty(value: torch.Tensor, name: str) -> torch.Tensor:
    """A tensor with at least one entry."""
    if value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    return value


def require_integer_values(value, name: str) -> torch.Tensor:
    """A real tensor holding integers: an integer dtype, or floats that are all finite whole numbers."""
    require_tensor(value, name)
    if value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"{name} must be a real tensor of integers, got {value.dtype}")
    if value.is_floating_point() and not bool((torch.isfinite(value) & (value == value.round())).all()):
        raise ValueError(f"{name} must hold integers, got non-integer, NaN or infinite entries")
    return value


def require_labelled_data(x, y, x_name: str = "x", y_name: str = "y") -> None:
    """Samples and their class labels: ``x`` a non-empty floating-point tensor (N, ...) of finite values, ``y``
    an integer tensor (N,) of labels >= 0."""
    require_float_tensor(x, x_name)
    require_integer_tensor(y, y_name)
    if x.dim() < 1 or y.dim() != 1 or len(x) != len(y):
        raise ValueError(f"{x_name} must be (N, ...) and {y_name} (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(y) == 0:
        raise ValueError(f"{x_name} and {y_name} must not be empty")
    require_finite(x, x_name)
    if bool((y < 0).any()):
        raise ValueError(f"{y_name} must hold class labels >= 0")


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


def require_batch_norm(bn, name: str = "bn") -> None:
    """A ``BatchNorm1d``/``BatchNorm2d`` module with running statistics, finite parameters and variances >= 0."""
    if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
        raise TypeError(f"{name} must be a BatchNorm1d/BatchNorm2d module, got {type(bn).__name__}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{name} has no running statistics (track_running_stats=False): running_mean and "
                         "running_var are needed to fold it")
    named = [(bn.running_mean, "running_mean"), (bn.running_var, "running_var")]
    if bn.affine:
        named += [(bn.weight, "weight"), (bn.bias, "bias")]
    for t, what in named:
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}.{what} must be finite")
    if bool((bn.running_var < 0).any()):
        raise ValueError(f"{name}.running_var must be >= 0")


def require_float_input(value, name: str) -> torch.Tensor:
    """A floating-point tensor without NaN (infinity allowed: quantizers saturate it)."""
    require_float_tensor(value, name)
    return require_no_nan(value, name)


def require_weights(value, name: str = "w") -> torch.Tensor:
    """A floating-point weight tensor: not empty, every entry finite."""
    require_float_tensor(value, name)
    require_not_empty(value, name)
    require_no_nan(value, name)
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite")
    return value
