"""One module per paper of the book: the paper's mechanism, documented with its equations, and nothing else.

Modules are named by the paper's slug in the catalog (``qteach.papers.xnor_net`` for XNOR-Net); the paper's
notebook shows their source and ``tests/papers/test_<slug>.py`` checks them against the paper's equations.
"""
