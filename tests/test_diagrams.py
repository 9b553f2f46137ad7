"""The book's SVG diagrams (qteach.diagrams): valid SVG that shows the numbers the library computes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import torch

from qteach import bitops, diagrams

SVG = "{http://www.w3.org/2000/svg}"


def texts(diagram) -> list[str]:
    root = ET.fromstring(diagram._repr_svg_())
    assert root.tag == f"{SVG}svg" and root.get("viewBox")
    return [t.text for t in root.iter(f"{SVG}text")]


def test_bit_packing_shows_the_words_pack_bits_writes():
    values = [1, -1, -1, 1, 1, 1, -1, 1, -1, -1]
    shown = texts(diagrams.bit_packing(values))
    packed = bitops.pack_bits(torch.tensor(values, dtype=torch.float32)).tolist()
    assert packed == [70, 3]
    assert "word 0 = 70 = 0x46" in shown and "word 1 = 3 = 0x03" in shown
    assert repr(diagrams.bit_packing(values)) == "Diagram: 10 signs packed into 2 word(s) of 8 bits"


def test_xnor_popcount_shows_the_dot_product():
    a, b = [1, -1, -1, 1, 1, 1, -1, 1], [1, 1, -1, -1, 1, -1, -1, 1]
    shown = texts(diagrams.xnor_popcount(a, b))
    assert sum(x * y for x, y in zip(a, b)) == 2
    assert "popcount(XNOR) = p = 5 of K = 8" in shown and "a . b = 2p - K = 10 - 8 = 2" in shown
    dot = bitops.xnor_matmul(torch.tensor([a], dtype=torch.float32), torch.tensor([b], dtype=torch.float32))
    assert dot.item() == 2


def test_chain_draws_every_block_with_arrows_and_wraps():
    d = diagrams.chain(["BatchNorm", "sign", "binary conv", "scale", "pool"], "A binary block", notes=list("abcde"))
    shown = texts(d)
    assert shown[0] == "A binary block" and all(b in shown for b in ("BatchNorm", "pool", "e"))
    root = ET.fromstring(d.svg)
    assert len(list(root.iter(f"{SVG}path"))) == 1 + 4  # the arrow head marker, and four arrows
    assert "->" in repr(d)


@pytest.mark.parametrize("call, error, name", [
    (lambda: diagrams.bit_packing([1, 0]), ValueError, "values"),
    (lambda: diagrams.bit_packing("+-"), TypeError, "values"),
    (lambda: diagrams.bit_packing([1], word_bits=0), ValueError, "word_bits"),
    (lambda: diagrams.xnor_popcount([1, -1], [1]), ValueError, "same length"),
    (lambda: diagrams.xnor_popcount([], []), ValueError, "a must"),
    (lambda: diagrams.chain([], "t"), TypeError, "blocks"),
    (lambda: diagrams.chain(["a"], "t", notes=["x", "y"]), ValueError, "notes"),
    (lambda: diagrams.chain(["a", 3], "t"), TypeError, "blocks"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
