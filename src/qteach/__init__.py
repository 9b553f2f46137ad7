"""qteach: the small, tested library behind *Model Quantization, Paper by Paper*.

Core modules (stable API, see the book's API reference): :mod:`qteach.quant`, :mod:`qteach.binary`,
:mod:`qteach.bitops`, :mod:`qteach.nn`, :mod:`qteach.data`, :mod:`qteach.train`, :mod:`qteach.hw`,
:mod:`qteach.viz`, :mod:`qteach.checks`, :mod:`qteach.catalog`; one module per paper in :mod:`qteach.papers`.
"""

from qteach.seed import set_seed

__version__ = "0.1.0"

__all__ = ["set_seed", "__version__"]
