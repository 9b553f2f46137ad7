"""Diagrams for the book, drawn as SVG from the values they explain: bit packing, the XNOR-popcount dot product,
and chains of blocks (a binary network's block order, a hardware dataflow).

Each function returns a :class:`Diagram`, which Jupyter, Colab and the HTML book draw as an image (SVG, no
JavaScript, no network) and whose text form says what it shows. The drawings scale to the page's width.
"""

from __future__ import annotations

import html

from qteach._validate import require_int, require_str

_FONT = "font-family:DejaVu Sans Mono,Menlo,Consolas,monospace;font-size:13px"
_BLUE, _ORANGE, _GREEN, _GREY = "#0072B2", "#D55E00", "#009E73", "#555555"


class Diagram:
    """An SVG drawing with a one-line text description (its ``repr``, and what tests compare)."""

    def __init__(self, svg: str, description: str):
        self.svg, self.description = svg, description

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"Diagram: {self.description}"


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" style="max-width:100%;height:auto" role="img" aria-label="{html.escape(title)}">'
            f"<title>{html.escape(title)}</title>" + "".join(body) + "</svg>")


def _text(x, y, text, colour=_GREY, anchor="middle", weight="normal") -> str:
    return (f'<text x="{x}" y="{y}" text-anchor="{anchor}" fill="{colour}" font-weight="{weight}" '
            f'style="{_FONT}">{html.escape(str(text))}</text>')


def _cell(x, y, w, h, text, fill="#FFFFFF", stroke=_GREY, colour="#000000") -> str:
    return (f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}" stroke="{stroke}"/>'
            + _text(x + w / 2, y + h / 2 + 5, text, colour))


def _signs(values, name: str) -> list[int]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of +1/-1 values")
    out = [int(v) for v in values]
    if not out or any(v not in (-1, 1) for v in out):
        raise ValueError(f"{name} must be a non-empty sequence of +1/-1 values, got {list(values)!r}")
    return out


def bit_packing(values, word_bits: int = 8) -> Diagram:
    """How :func:`qteach.bitops.pack_bits` stores ``values`` (+1/-1): bit 1 for -1, bit 0 for +1; element
    :math:`k` goes to bit :math:`k \\bmod w` of word :math:`\\lfloor k/w \\rfloor` (little-endian), unused high
    bits of the last word are 0. Shows each word's bits (highest bit on the left, as a number is written) and
    its value."""
    values = _signs(values, "values")
    word_bits = require_int(word_bits, "word_bits", minimum=1, maximum=16)
    size, gap = 34, 22
    words = [values[i:i + word_bits] for i in range(0, len(values), word_bits)]
    width = max(60 + len(values) * size + 20, 60 + len(words) * (word_bits * size + gap))
    body = [_text(10, 30, "values", anchor="start"), _text(10, 112, "bits", anchor="start"),
            _text(10, 160, "words", anchor="start")]
    for k, v in enumerate(values):
        body.append(_cell(60 + k * size, 12, size, 28, "+1" if v > 0 else "-1", colour=_BLUE if v > 0 else _ORANGE))
    for w, word in enumerate(words):
        left = 60 + w * (word_bits * size + gap)
        bits = [1 if v < 0 else 0 for v in word] + [0] * (word_bits - len(word))
        for position in range(word_bits):  # highest bit on the left
            bit = word_bits - 1 - position
            k = w * word_bits + bit
            x = left + position * size
            unused = k >= len(values)
            body.append(_cell(x, 94, size, 28, bits[bit], fill="#EEEEEE" if unused else "#FFFFFF"))
            body.append(_text(x + size / 2, 136, f"b{bit}", colour="#999999"))
            if not unused:
                body.append(f'<line x1="{60 + k * size + size / 2}" y1="40" x2="{x + size / 2}" y2="94" '
                            f'stroke="#BBBBBB"/>')
        value = sum(b << i for i, b in enumerate(bits))
        body.append(_text(left + word_bits * size / 2, 160, f"word {w} = {value} = 0x{value:0{(word_bits + 3) // 4}X}",
                          colour=_GREEN, weight="bold"))
    description = f"{len(values)} signs packed into {len(words)} word(s) of {word_bits} bits"
    return Diagram(_svg(width, 172, body, description), description)


def xnor_popcount(a, b) -> Diagram:
    """The binary dot product of two +1/-1 vectors the way hardware computes it: XNOR marks the positions where
    the signs agree, popcount counts them (:math:`p`), and :math:`a \\cdot b = 2p - K`."""
    a, b = _signs(a, "a"), _signs(b, "b")
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same length, got {len(a)} and {len(b)}")
    size, n = 34, len(a)
    matches = [int(x == y) for x, y in zip(a, b)]
    p, dot = sum(matches), sum(x * y for x, y in zip(a, b))
    rows = [("a", [int(x < 0) for x in a]), ("b", [int(y < 0) for y in b]), ("XNOR", matches)]
    body = []
    for r, (name, bits) in enumerate(rows):
        y = 12 + r * 40
        body.append(_text(10, y + 19, name, anchor="start", weight="bold" if name == "XNOR" else "normal"))
        for k, bit in enumerate(bits):
            fill = ("#D9F0E8" if bit else "#FBE3D6") if name == "XNOR" else "#FFFFFF"
            body.append(_cell(70 + k * size, y, size, 28, bit, fill=fill))
    body.append(_text(70, 150, f"popcount(XNOR) = p = {p} of K = {n}", colour=_GREEN, anchor="start",
                      weight="bold"))
    body.append(_text(70, 174, f"a . b = 2p - K = {2 * p} - {n} = {dot}", colour=_BLUE, anchor="start",
                      weight="bold"))
    body.append(_text(70, 198, "bit 1 = -1, bit 0 = +1. The kernels count mismatches instead:", anchor="start"))
    body.append(_text(70, 218, "a . b = K - 2 popcount(a XOR b), the same number.", anchor="start"))
    description = f"XNOR-popcount of {n} signs: p = {p}, a . b = {dot}"
    return Diagram(_svg(max(70 + n * size + 20, 560), 228, body, description), description)


def chain(blocks, title: str, notes=None) -> Diagram:
    """Blocks joined by arrows, left to right, wrapping onto a new row after every four: a network's block order
    (``["BatchNorm", "sign", "binary conv", "pool"]``) or a hardware dataflow. ``notes`` puts a small line of text
    under each block (``None`` or a list as long as ``blocks``)."""
    if isinstance(blocks, str) or not isinstance(blocks, (list, tuple)) or not blocks:
        raise TypeError("blocks must be a non-empty list of block names")
    blocks = [require_str(b, "blocks") for b in blocks]
    notes = [""] * len(blocks) if notes is None else [require_str(n, "notes") for n in notes]
    if len(notes) != len(blocks):
        raise ValueError(f"notes must have one entry per block ({len(blocks)}), got {len(notes)}")
    title = require_str(title, "title")
    per_row, w, h, gap_x, gap_y = 4, 130, 46, 34, 46
    rows = (len(blocks) + per_row - 1) // per_row
    body = [_text(10, 20, title, colour="#000000", anchor="start", weight="bold")]
    for i, (name, note) in enumerate(zip(blocks, notes)):
        row, col = divmod(i, per_row)
        x, y = 10 + col * (w + gap_x), 36 + row * (h + gap_y)
        body.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="#EAF2FA" stroke="{_BLUE}"/>')
        body.append(_text(x + w / 2, y + (20 if note else 28), name, colour="#000000"))
        if note:
            body.append(_text(x + w / 2, y + 38, note, colour="#777777"))
        if i + 1 < len(blocks):
            if col + 1 < per_row:  # arrow to the right
                body.append(f'<path d="M{x + w} {y + h / 2} h{gap_x - 6}" stroke="{_GREY}" stroke-width="2" '
                            f'marker-end="url(#arrow)" fill="none"/>')
            else:  # down and back to the start of the next row
                body.append(f'<path d="M{x + w / 2} {y + h} v{gap_y / 2} H{10 + w / 2} v{gap_y / 2 - 6}" '
                            f'stroke="{_GREY}" stroke-width="2" marker-end="url(#arrow)" fill="none"/>')
    marker = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
              f'orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="{_GREY}"/></marker></defs>')
    width = 20 + min(len(blocks), per_row) * (w + gap_x) - gap_x
    description = f"{title}: " + " -> ".join(blocks)
    return Diagram(_svg(max(width, 300), 46 + rows * (h + gap_y) - gap_y + 10, [marker, *body], title), description)
