r"""BinaryNet: the XNOR-popcount matrix product of a binary network, as the paper's GPU kernel computes it.

Courbariaux and Bengio (arXiv 1602.02830v1, February 2016) train networks with binary weights and activations
(the method that the later versions of the same arXiv number, and the NIPS paper, call Binarized Neural Networks;
see :mod:`qteach.papers.binarized_neural_networks`). What this version stresses is run time: with
:math:`\pm 1` values stored as bits, a dot product of length :math:`K` is

.. math:: a \cdot b = 2 \operatorname{popcount}\big(\operatorname{xnor}(a, b)\big) - K ,

since XNOR is 1 exactly where the two signs agree (+1 products) and the :math:`K - p` disagreements contribute
:math:`-1` each: :math:`p - (K - p) = 2p - K`. The paper's GPU kernel packs 32 signs into one 32-bit register
(``concatenate`` in the released ``binary_kernels.cu``: bit :math:`i` is 1 when value :math:`i` is :math:`\ge 0`),
then accumulates ``__popc(~(A ^ B))`` over the words and writes ``2 * C - 32 * n``. This module reproduces that
arithmetic in readable NumPy/torch (:func:`concatenate`, :func:`xnor_gemm`); the fast CPU kernel of the book is
:func:`qteach.bitops.xnor_matmul` (the same product written :math:`K - 2\operatorname{popcount}(a \oplus b)`, with
the opposite bit convention), and deployment of a whole trained network is :mod:`qteach.deploy`.

The abstract reports that the binary kernel runs the MNIST MLP 7 times faster than an unoptimized GPU kernel, with
no loss of accuracy; the official ``Run-time/README.md`` reports, for 8192 x 8192 x 8192 products on a GTX750,
an XNOR kernel about 23 times faster than the baseline kernel and 3.4 times faster than cuBLAS (an earlier version
of that README: 14 times and 2.5 times faster than Theano's).

References:

- M. Courbariaux, Y. Bengio, *BinaryNet: Training Deep Neural Networks with Weights and Activations Constrained
  to +1 or -1*, arXiv:1602.02830v1, 2016.
- Official code: https://github.com/MatthieuCourbariaux/BinaryNet (``Run-time/binary_kernels.cu``).
"""

from __future__ import annotations

import numpy as np
import torch

from qteach._validate import require_int, require_ndim, require_no_nan, require_tensor

__all__ = ["WORD_BITS", "concatenate", "xnor_gemm", "xnor_dot"]

WORD_BITS = 32
"""Signs per register in the paper's GPU kernel (32-bit unsigned ints)."""


def concatenate(x: torch.Tensor) -> torch.Tensor:
    r"""Pack the signs of ``x`` (..., K) into 32-bit words, as the kernel's ``concatenate``.

    .. math:: \text{word}_j = \sum_{i=0}^{31} [x_{32j + i} \ge 0]\, 2^{i}

    Bit :math:`i` of word :math:`j` is 1 for :math:`+1` (:math:`x \ge 0`) and 0 for :math:`-1`, the paper's
    convention (the book's :func:`qteach.bitops.pack_bits` uses the opposite one). When :math:`K` is not a multiple
    of 32 the last word is padded with 0 bits, which :func:`xnor_gemm` masks out. Returns an int64 tensor of shape
    (..., ceil(K / 32)) holding the unsigned 32-bit values.
    """
    require_tensor(x, "x")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"x must be a real tensor, got {x.dtype}")
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last dimension, got shape {tuple(x.shape)}")
    require_no_nan(x, "x")
    k = x.shape[-1]
    bits = (x.detach().cpu() >= 0).to(torch.int64)
    padded = torch.nn.functional.pad(bits, (0, -k % WORD_BITS))
    groups = padded.unflatten(-1, (-1, WORD_BITS))
    return (groups << torch.arange(WORD_BITS)).sum(-1)


def _check_words(t: torch.Tensor, name: str, k: int) -> None:
    """``t`` must be the int64 words of :func:`concatenate`, (rows, ceil(k / 32)), for rows of length ``k``."""
    words = -(-k // WORD_BITS)
    require_tensor(t, name)
    require_ndim(t, name, 2)
    if t.dtype != torch.int64:
        raise TypeError(f"{name} must be the int64 words of concatenate(), got {t.dtype}")
    if t.shape[1] != words:
        raise ValueError(f"{name} must have ceil(k / 32) = {words} words per row for k = {k}, got {t.shape[1]}")


def xnor_gemm(a_words: torch.Tensor, b_words: torch.Tensor, k: int) -> torch.Tensor:
    r"""The binary matrix product of the paper's ``xnor_gemm`` kernel, on packed 32-bit words.

    .. math:: C_{mn} = 2 \sum_j \operatorname{popcount}\big(\lnot(A_{mj} \oplus B_{nj}) \mathbin{\&}
        \text{mask}_j\big) - K

    ``a_words`` (M, W) and ``b_words`` (N, W) come from :func:`concatenate` for rows of length ``k``
    (:math:`W = \lceil K / 32 \rceil`). XNOR of two padding bits would be 1 and count as an agreement, so the last
    word is masked to its :math:`K \bmod 32` valid bits (the official kernel only accepts multiples of 32 and has no
    mask). Returns int64 (M, N), equal to ``sign(a) @ sign(b).T`` for the tensors that were packed.
    """
    k = require_int(k, "k", minimum=1)
    _check_words(a_words, "a_words", k)
    _check_words(b_words, "b_words", k)
    words = -(-k // WORD_BITS)
    a = a_words.numpy().astype(np.uint32)
    b = b_words.numpy().astype(np.uint32)
    mask = np.full(words, 0xFFFFFFFF, dtype=np.uint32)
    if k % WORD_BITS:
        mask[-1] = (1 << (k % WORD_BITS)) - 1
    agreements = np.zeros((a.shape[0], b.shape[0]), dtype=np.int64)
    for j in range(words):  # one 32-bit word of every row pair at a time, as the kernel's inner loop
        xnor = ~(a[:, None, j] ^ b[None, :, j]) & mask[j]
        agreements += np.bitwise_count(xnor).astype(np.int64)
    return torch.from_numpy(2 * agreements - k)


def xnor_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""``sign(a) @ sign(b).T`` through :func:`concatenate` and :func:`xnor_gemm` (a: (M, K), b: (N, K))."""
    require_tensor(a, "a")
    require_tensor(b, "b")
    require_ndim(a, "a", 2)
    require_ndim(b, "b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same K (dim 1), got {tuple(a.shape)} and {tuple(b.shape)}")
    return xnor_gemm(concatenate(a), concatenate(b), a.shape[1])
