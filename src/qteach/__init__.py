"""qteach: the small, tested library behind *Model Quantization, Paper by Paper*.

Core modules (stable API, see the book's API reference): :mod:`qteach.quant`, :mod:`qteach.binary`,
:mod:`qteach.bitops`, :mod:`qteach.nn`, :mod:`qteach.data`, :mod:`qteach.train`, :mod:`qteach.hw`,
:mod:`qteach.viz`, :mod:`qteach.checks`, :mod:`qteach.display`, :mod:`qteach.catalog`, :mod:`qteach.deploy`
(trained binary networks on packed bits), :mod:`qteach.comparison` (the results page), :mod:`qteach.course` and
:mod:`qteach.cli` (the instructors' tools); one module per paper in :mod:`qteach.papers`, the exercises' self-checks
in :mod:`qteach.exercises`.
"""

from qteach.seed import set_seed

__version__ = "0.1.0"

__all__ = ["set_seed", "__version__"]
