r"""Hyperdrive: binary weights streamed in, feature maps kept on chip, large maps tiled over a systolic mesh of chips
(Andri, Cavigelli, Rossi, Benini, IEEE JETCAS 2019; arXiv 1804.00623).

What we could read: the abstract of the journal version (arXiv v3, March 2019), the first lines of its introduction,
and the abstract of the earlier conference version (ISVLSI 2018, "... for mW IoT End-Nodes"). The abstract states
the design: a binary-weight network (BWN) accelerator that reduces I/O bandwidth by a *binary-weight streaming*
approach, processes *the entire feature map together in parallel*, and scales to any network and input resolution
by *arranging Hyperdrive chips systolically in a 2D mesh*; its core uses FP16 arithmetic; it reaches 4.3 TOp/s/W
system-level efficiency (including I/O), 3.1x the state-of-the-art BWN accelerators (:data:`PAPER`). The chip's
architecture, memory sizes, clock, I/O energy and dataflow details are in the full text, which we could not read.
Everything below beyond the abstract is **our reconstruction**, and every constant in :data:`ASSUMED` is labelled:

1. **Tiling with border exchange** (ours). A feature map of :math:`H \times W` pixels is cut into an
   :math:`M \times N` grid of tiles (:func:`tile_bounds`), one per chip. A :math:`k \times k` convolution with
   "same" padding needs, around each tile, a border (halo) of :math:`r = \lfloor k/2 \rfloor` pixels that lives on the
   neighbouring chips (north, south, east, west and the four diagonal ones); :func:`extend_tile` assembles it from
   the neighbours' tiles, with zeros outside the image.
2. **Binary-weight streaming** (ours, in the spirit of the abstract). Each weight bit :math:`w \in \{-1, +1\}` arrives
   once and is applied to the whole (extended) tile at once: the output map gains or loses a shifted copy of one
   input channel (:func:`stream_binary_conv`),

   .. math:: y_{o}(p) = \sum_{c=1}^{C_{in}} \sum_{(u,v)} w_{o,c,u,v}\; x_{c}(p + (u,v)),
       \qquad w_{o,c,u,v} \in \{-1, +1\},

   so a binary-weight multiply-accumulate is one add or subtract. :func:`systolic_binary_conv2d` runs it on every
   chip and stitches the tiles: the result equals ``F.conv2d(x, w, padding=k // 2)`` (exactly when every partial sum
   is representable, as with integer-valued feature maps).
3. **I/O counted per layer** (:func:`layer_io_bits`): with feature maps (FMs) kept on chip, what crosses a chip
   boundary is the weight stream (:math:`C_{out} C_{in} k^2` bits per layer) and the border exchange (:math:`C_{in}
   \cdot` :func:`border_pixels` :math:`\cdot` 16 bits); a *feature-map streaming* baseline that keeps the weights and
   streams FMs through external memory moves :math:`(C_{in} H_{in} W_{in} + C_{out} H_{out} W_{out}) \cdot 16` bits
   plus the weights once. :func:`chips_needed` sizes the mesh from an on-chip FM memory per chip (an assumption).

References:

- R. Andri, L. Cavigelli, D. Rossi, L. Benini, *Hyperdrive: A Multi-Chip Systolically Scalable Binary-Weight CNN
  Inference Engine*, IEEE JETCAS 2019, arXiv 1804.00623.
- M. Horowitz, *Computing's energy problem (and what we can do about it)*, ISSCC 2014 (the energies in
  :mod:`qteach.hw`, used here for DRAM and FP16-add energy).
- K. He, X. Zhang, S. Ren, J. Sun, *Deep Residual Learning for Image Recognition*, CVPR 2016 (ResNet shapes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qteach import hw
from qteach._validate import (
    require_bits,
    require_bool,
    require_int,
    require_positive_number,
    require_tensor,
)

__all__ = [
    "ASSUMED",
    "PAPER",
    "Conv",
    "border_pixels",
    "chips_needed",
    "extend_tile",
    "layer_io_bits",
    "network_io",
    "resnet_layers",
    "split_tiles",
    "stream_binary_conv",
    "system_efficiency",
    "systolic_binary_conv2d",
    "tile_bounds",
]

#: The numbers the abstracts state (arXiv 1804.00623 v3 for the journal version; ISVLSI 2018 for the conference one).
PAPER = {
    "system_tops_per_w": 4.3,          # system-level efficiency including I/O (journal abstract)
    "gain_vs_bwn_sota": 3.1,           # x the state-of-the-art BWN accelerators (journal abstract)
    "core_arithmetic": "FP16",         # "its core uses resource-intensive FP16 arithmetic" (abstract)
    "isvlsi2018_system_tops_per_w": 5.9,   # conference version's abstract
    "isvlsi2018_gain_vs_bnn_sota": 2.2,    # conference version's abstract ("BNN accelerators")
}

#: Constants of the cost model. NONE of them is from the Hyperdrive paper (its tables were not read):
#:
#: - ``act_bits``: bits per feature-map value; FP16 because the abstract says the core computes in FP16;
#: - ``weight_bits``: a binary weight is one bit;
#: - ``fm_memory_bits_per_chip``: on-chip feature-map memory of one chip, 8 Mibit, an illustrative assumption;
#: - ``io_pj_per_bit``: off-chip energy per bit, Horowitz's 45 nm DRAM figure (1.3 nJ per 64 bits, low end);
#: - ``link_pj_per_bit``: chip-to-chip border-link energy per bit, assumed equal to ``io_pj_per_bit``;
#: - ``mac_pj``: a binary-weight MAC is one FP16 add or subtract, Horowitz's 45 nm FP16 add (0.4 pJ).
ASSUMED = {
    "act_bits": 16,
    "weight_bits": 1,
    "fm_memory_bits_per_chip": 8 * 2**20,
    "io_pj_per_bit": hw.MEMORY_PJ_PER_64BIT_45NM["dram"] / 64,
    "link_pj_per_bit": hw.MEMORY_PJ_PER_64BIT_45NM["dram"] / 64,
    "mac_pj": hw.ENERGY_PJ_45NM[("float", "add", 16)],
}


def _require_grid(grid) -> tuple[int, int]:
    if not isinstance(grid, (tuple, list)) or len(grid) != 2:
        raise ValueError(f"grid must be a pair (rows, cols) of chips, got {grid!r}")
    return require_int(grid[0], "grid", 1), require_int(grid[1], "grid", 1)


def tile_bounds(size: int, parts: int) -> list[tuple[int, int]]:
    r"""Cut ``size`` pixels into ``parts`` contiguous tiles as evenly as possible: the first ``size % parts`` tiles
    get :math:`\lceil size/parts \rceil` pixels, the others :math:`\lfloor size/parts \rfloor`. Returns
    ``[(start, stop), ...]``; every tile has at least one pixel."""
    size, parts = require_int(size, "size", 1), require_int(parts, "parts", 1)
    if parts > size:
        raise ValueError(f"parts must be <= size (every chip needs a pixel), got parts={parts}, size={size}")
    base, extra = divmod(size, parts)
    stops = [sum(base + (i < extra) for i in range(j + 1)) for j in range(parts)]
    return list(zip([0] + stops[:-1], stops))


def split_tiles(x: torch.Tensor, grid) -> dict:
    """Distribute a feature map ``x`` (C, H, W) over a ``grid = (rows, cols)`` of chips: ``{(i, j): tile}``."""
    require_tensor(x, "x")
    if x.dim() != 3:
        raise ValueError(f"x must be a feature map (C, H, W), got shape {tuple(x.shape)}")
    rows, cols = _require_grid(grid)
    row_bounds, col_bounds = tile_bounds(x.shape[1], rows), tile_bounds(x.shape[2], cols)
    return {(i, j): x[:, r0:r1, c0:c1] for i, (r0, r1) in enumerate(row_bounds)
            for j, (c0, c1) in enumerate(col_bounds)}


def extend_tile(tiles: dict, i: int, j: int, halo: int, exchange_corners: bool = True) -> torch.Tensor:
    r"""Chip :math:`(i, j)`'s tile with a border of ``halo`` pixels received from its eight neighbours.

    North sends its last ``halo`` rows, south its first, west its last columns, east its first; the four diagonal
    neighbours send an :math:`r \times r` corner. Outside the image the border is zero ("same" padding). With
    ``exchange_corners=False`` the corners stay zero (a bug, for the exercise). Each tile must be at least ``halo``
    pixels tall and wide.
    """
    if not isinstance(tiles, dict) or (i, j) not in tiles:
        raise ValueError(f"tiles must be a dict from split_tiles holding chip ({i}, {j})")
    halo = require_int(halo, "halo", 0)
    exchange_corners = require_bool(exchange_corners, "exchange_corners")
    if any(min(t.shape[1], t.shape[2]) < halo for t in tiles.values()):
        raise ValueError(f"every tile must be at least halo={halo} pixels tall and wide")
    own = tiles[i, j]
    c, h, w = own.shape
    out = own.new_zeros(c, h + 2 * halo, w + 2 * halo)
    out[:, halo:halo + h, halo:halo + w] = own
    if halo == 0:
        return out
    rows = {-1: (slice(0, halo), slice(-halo, None)), 0: (slice(halo, halo + h), slice(None)),
            1: (slice(halo + h, None), slice(0, halo))}          # where it goes, what the neighbour sends
    cols = {-1: (slice(0, halo), slice(-halo, None)), 0: (slice(halo, halo + w), slice(None)),
            1: (slice(halo + w, None), slice(0, halo))}
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            neighbour = tiles.get((i + di, j + dj))
            if (di, dj) == (0, 0) or neighbour is None or (di and dj and not exchange_corners):
                continue
            (to_r, from_r), (to_c, from_c) = rows[di], cols[dj]
            out[:, to_r, to_c] = neighbour[:, from_r, from_c]
    return out


def stream_binary_conv(x_ext: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""Binary-weight streaming on one chip: every weight bit is applied to the whole tile at once.

    .. math:: y_o \mathrel{+}= w_{o,c,u,v}\; x_c[u : u + h,\; v : v + w], \qquad w_{o,c,u,v} \in \{-1, +1\}

    ``x_ext`` (C_in, h + k - 1, w + k - 1) is a tile with its border, ``w`` (C_out, C_in, k, k) holds only -1 and +1.
    Weights stream in channel by channel and tap by tap (our order); each step adds or subtracts a shifted copy of
    one input channel into every output map. Returns (C_out, h, w).
    """
    require_tensor(x_ext, "x_ext")
    require_tensor(w, "w")
    if x_ext.dim() != 3 or w.dim() != 4 or w.shape[1] != x_ext.shape[0] or w.shape[2] != w.shape[3]:
        raise ValueError(f"x_ext must be (C_in, H, W) and w (C_out, C_in, k, k), got {tuple(x_ext.shape)} and "
                         f"{tuple(w.shape)}")
    if not bool(((w == 1) | (w == -1)).all()):
        raise ValueError("w must hold only -1 and +1 (binary weights)")
    k = w.shape[2]
    h, wd = x_ext.shape[1] - k + 1, x_ext.shape[2] - k + 1
    if h < 1 or wd < 1:
        raise ValueError(f"x_ext ({tuple(x_ext.shape)}) is smaller than the kernel ({k}x{k})")
    y = x_ext.new_zeros(w.shape[0], h, wd)
    for c in range(w.shape[1]):
        for u in range(k):
            for v in range(k):
                shifted = x_ext[c, u:u + h, v:v + wd]            # the whole tile, one tap
                y += w[:, c, u, v].to(y.dtype)[:, None, None] * shifted   # +x or -x per output map
    return y


def systolic_binary_conv2d(x: torch.Tensor, w: torch.Tensor, grid, exchange_corners: bool = True) -> torch.Tensor:
    r"""A binary-weight "same" convolution (stride 1, odd :math:`k`) computed by a ``grid = (rows, cols)`` mesh of
    chips: tile ``x`` (C_in, H, W), exchange borders of :math:`r = \lfloor k/2 \rfloor` pixels, stream the weights
    on every chip (:func:`stream_binary_conv`), stitch the output tiles. Equals ``F.conv2d(x, w, padding=k // 2)``.
    """
    require_tensor(x, "x")
    require_tensor(w, "w")
    if x.dim() != 3 or not x.is_floating_point():
        raise ValueError(f"x must be a float feature map (C, H, W), got shape {tuple(x.shape)} {x.dtype}")
    if w.dim() != 4 or w.shape[1] != x.shape[0] or w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
        raise ValueError(f"w must be (C_out, {x.shape[0]}, k, k) with k odd, got {tuple(w.shape)}")
    rows, cols = _require_grid(grid)
    tiles = split_tiles(x, (rows, cols))
    halo = w.shape[2] // 2
    out = [[stream_binary_conv(extend_tile(tiles, i, j, halo, exchange_corners), w) for j in range(cols)]
           for i in range(rows)]
    return torch.cat([torch.cat(row, dim=2) for row in out], dim=1)


@dataclass(frozen=True)
class Conv:
    """One convolution layer's shape: ``c_in -> c_out``, ``kernel`` x ``kernel``, ``stride``, on an input of
    ``height`` x ``width`` pixels with "same"-style padding ``kernel // 2``."""

    name: str
    c_in: int
    c_out: int
    kernel: int
    stride: int
    height: int
    width: int

    @property
    def out_height(self) -> int:
        return hw.conv2d_output_size(self.height, self.kernel, self.stride, self.kernel // 2)

    @property
    def out_width(self) -> int:
        return hw.conv2d_output_size(self.width, self.kernel, self.stride, self.kernel // 2)

    @property
    def macs(self) -> int:
        return hw.conv2d_macs(self.c_in, self.c_out, self.kernel, self.out_height, self.out_width)


def resnet_layers(depth: int = 34, height: int = 224, width: int | None = None) -> list[Conv]:
    """The convolution layers of ResNet-18 or ResNet-34 (He et al., 2016) on a ``height`` x ``width`` image: the
    7x7 stem, the 3x3 convolutions of the basic blocks and the 1x1 stride-2 shortcut convolutions (no FC layer)."""
    depth = require_int(depth, "depth")
    if depth not in (18, 34):
        raise ValueError(f"depth must be 18 or 34, got {depth}")
    height = require_int(height, "height", 32)
    width = height if width is None else require_int(width, "width", 32)
    layers = [Conv("conv1", 3, 64, 7, 2, height, width)]
    h, w = -(-layers[0].out_height // 2), -(-layers[0].out_width // 2)          # 3x3 max-pool, stride 2
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}[depth]
    c_in = 64
    for stage, (c_out, count) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for b in range(count):
            stride = 2 if stage > 1 and b == 0 else 1
            first = Conv(f"layer{stage}.{b}.conv1", c_in, c_out, 3, stride, h, w)
            layers.append(first)
            if stride == 2:
                layers.append(Conv(f"layer{stage}.{b}.downsample", c_in, c_out, 1, 2, h, w))
            h, w = first.out_height, first.out_width
            layers.append(Conv(f"layer{stage}.{b}.conv2", c_out, c_out, 3, 1, h, w))
            c_in = c_out
    return layers


def border_pixels(height: int, width: int, grid, halo: int) -> int:
    r"""Pixels (per channel) that the chips of a ``grid`` receive from other chips: for every chip, its tile grown
    by ``halo`` on each side and clipped to the image, minus the tile itself."""
    height, width = require_int(height, "height", 1), require_int(width, "width", 1)
    rows, cols = _require_grid(grid)
    halo = require_int(halo, "halo", 0)
    total = 0
    for r0, r1 in tile_bounds(height, rows):
        for c0, c1 in tile_bounds(width, cols):
            grown = (min(height, r1 + halo) - max(0, r0 - halo)) * (min(width, c1 + halo) - max(0, c0 - halo))
            total += grown - (r1 - r0) * (c1 - c0)
    return total


def layer_io_bits(layer: Conv, grid, act_bits: int = 16, weight_bits: int = 1) -> dict:
    r"""Bits one layer moves for one image, under the two schemes.

    Hyperdrive (FMs stay on chip): ``weights`` = :math:`C_{out} C_{in} k^2 b_w` streamed in once (the same stream
    feeds every chip) and ``border`` = :math:`C_{in} \cdot` border pixels :math:`\cdot b_a` exchanged between chips.
    Feature-map streaming: ``fm_streaming`` = input and output FMs through external memory plus the weights once.
    ``on_chip_per_chip``: the largest chip's input and output tiles, :math:`b_a` bits each.
    """
    if not isinstance(layer, Conv):
        raise TypeError(f"layer must be a Conv, got {type(layer).__name__}")
    rows, cols = _require_grid(grid)
    act_bits, weight_bits = require_bits(act_bits, "act_bits"), require_bits(weight_bits, "weight_bits")
    weights = layer.c_out * layer.c_in * layer.kernel**2 * weight_bits
    border = layer.c_in * border_pixels(layer.height, layer.width, (rows, cols), layer.kernel // 2) * act_bits
    fm_in, fm_out = layer.c_in * layer.height * layer.width, layer.c_out * layer.out_height * layer.out_width
    tile_in = -(-layer.height // rows) * -(-layer.width // cols) * layer.c_in
    tile_out = -(-layer.out_height // rows) * -(-layer.out_width // cols) * layer.c_out
    return {"weights": weights, "border": border, "hyperdrive": weights + border,
            "fm_streaming": (fm_in + fm_out) * act_bits + weights,
            "on_chip_per_chip": (tile_in + tile_out) * act_bits}


def network_io(layers, grid, act_bits: int = 16, weight_bits: int = 1) -> dict:
    """:func:`layer_io_bits` summed over ``layers`` (``on_chip_per_chip``: the largest layer's), plus ``macs``.
    Hyperdrive's total also counts the input image read once and the last FM written once."""
    if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(c, Conv) for c in layers):
        raise TypeError("layers must be a non-empty list of Conv")
    per_layer = [layer_io_bits(layer, grid, act_bits, weight_bits) for layer in layers]
    total = {key: sum(p[key] for p in per_layer) for key in ("weights", "border", "hyperdrive", "fm_streaming")}
    last = layers[-1]
    total["image_and_result"] = (layers[0].c_in * layers[0].height * layers[0].width
                                 + last.c_out * last.out_height * last.out_width) * act_bits
    total["hyperdrive"] += total["image_and_result"]
    total["on_chip_per_chip"] = max(p["on_chip_per_chip"] for p in per_layer)
    total["macs"] = sum(layer.macs for layer in layers)
    return total


def chips_needed(layers, memory_bits: float, act_bits: int = 16, max_side: int = 64) -> tuple[int, int]:
    """The smallest square mesh ``(m, m)`` whose chips each hold the largest layer's input and output tiles in
    ``memory_bits`` bits of on-chip FM memory. ``ValueError`` if no mesh up to ``max_side`` suffices."""
    if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(c, Conv) for c in layers):
        raise TypeError("layers must be a non-empty list of Conv")
    memory_bits = require_positive_number(memory_bits, "memory_bits")
    act_bits, max_side = require_bits(act_bits, "act_bits"), require_int(max_side, "max_side", 1)
    for m in range(1, max_side + 1):
        if max(layer_io_bits(c, (m, m), act_bits)["on_chip_per_chip"] for c in layers) <= memory_bits:
            return m, m
    raise ValueError(f"no square mesh up to {max_side}x{max_side} holds these feature maps in {memory_bits:g} bits")


def system_efficiency(layers, grid, constants: dict | None = None) -> dict:
    r"""Energy per image (pJ) and system-level efficiency in TOp/s/W for both schemes:

    .. math:: E = N_{MAC}\, e_{MAC} + b_{off\text{-}chip}\, e_{io} + b_{border}\, e_{link}, \qquad
        \text{TOp/s/W} = \frac{2 N_{MAC}}{E / \text{pJ}}

    (two operations per MAC; ops per pJ is TOp/s/W). ``constants`` defaults to :data:`ASSUMED`."""
    c = dict(ASSUMED) if constants is None else {**ASSUMED, **constants}
    io = network_io(layers, grid, c["act_bits"], c["weight_bits"])
    compute = io["macs"] * c["mac_pj"]
    off_chip = io["hyperdrive"] - io["border"]
    energy = {"hyperdrive": compute + off_chip * c["io_pj_per_bit"] + io["border"] * c["link_pj_per_bit"],
              "fm_streaming": compute + io["fm_streaming"] * c["io_pj_per_bit"]}
    return {"macs": io["macs"], "compute_pj": compute, "energy_pj": energy,
            "tops_per_w": {k: 2 * io["macs"] / e for k, e in energy.items()}}
