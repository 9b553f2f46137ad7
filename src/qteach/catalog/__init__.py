"""The catalog of every paper in the book: one YAML file, loaded into :class:`Paper` records.

``papers.yaml`` (package data) is the single source of truth for which papers exist, their year, tags, code
link, bibliography key and notebook path. The book's table of contents, year chapters, tag pages, notebook
header cards and coverage tests are all generated from it or tested against it.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from importlib import resources

import yaml

from qteach._validate import require_int, require_str

TAGS = ("Binarization", "Low-bit Quantization", "Hardware")
YEARS = tuple(range(2015, 2021))

#: Where the book's repository lives; also written in ``_config.yml`` (a test keeps the two equal). Colab
#: links and the notebooks' install cell point here.
REPOSITORY_URL = "https://github.com/qteach-book/model-quantization-paper-by-paper"
REPOSITORY_BRANCH = "main"
#: Where the notebooks that Colab opens live in the repository (``colab/<page path>``: the exercise stubs with
#: the solutions folded, generated from the notebooks by ``tools/colab_copies.py``); ``_config.yml``'s
#: ``path_to_book``, so that the book's own launch buttons open them too.
COLAB_FOLDER = "colab"

#: The Foundations chapter: notebooks that teach the common ground before the papers.
FOUNDATIONS = {
    "numbers_and_quantization": {"title": "Numbers and quantization",
                                 "notebook": "notebooks/foundations/numbers_and_quantization.ipynb"},
    "training_through_a_quantizer": {"title": "Training through a quantizer",
                                     "notebook": "notebooks/foundations/training_through_a_quantizer.ipynb"},
    "bits_and_popcount": {"title": "Bits and popcount",
                          "notebook": "notebooks/foundations/bits_and_popcount.ipynb"},
    "what_hardware_pays_for": {"title": "What hardware pays for",
                               "notebook": "notebooks/foundations/what_hardware_pays_for.ipynb"},
    "what_one_bit_buys": {"title": "What 1 bit buys on your CPU",
                          "notebook": "notebooks/foundations/what_one_bit_buys.ipynb"},
}


#: Three paths through the book, each a sequence of chapters (Foundations or paper slugs) in reading order; the
#: intro page lists them and a test keeps them in the catalog and in time order.
READING_PATHS = {
    "Binary networks": (
        "training_through_a_quantizer", "binaryconnect", "binarized_neural_networks", "xnor_net", "abc_net",
        "horq", "competitive_bnn_from_scratch", "bnn_optimisation_study", "bnn_plus", "xnor_net_plus_plus",
        "ir_net", "real_to_binary", "rotated_bnn", "bnn_survey"),
    "Low-bit quantization and integer inference": (
        "numbers_and_quantization", "training_through_a_quantizer", "dorefa_net", "ternary_weight_networks",
        "trained_ternary_quantization", "incremental_network_quantization", "wrpn", "pact",
        "integer_arithmetic_only", "differentiable_soft_quantization", "unified_int8_training", "quant_noise"),
    "Hardware": (
        "bits_and_popcount", "what_hardware_pays_for", "what_one_bit_buys", "binarynet", "gpu_outperforming_fpga_bcnn",
        "fp_bnn", "bn_free_fpga", "finn_r", "bitflow", "xnor_neural_engine", "dabnn", "eyeriss_v2", "xcel_ram",
        "imac_sram"),
}


@dataclass(frozen=True)
class Paper:
    """One paper of the seed list.

    ``authors`` and ``venue`` are filled only where they were verified against a source; otherwise they are
    empty, and the book says so rather than guess. ``short_title`` is the name a reader knows the method by (the
    sidebar and cross-links), ``learn`` one line on what its chapter teaches. ``builds_on`` lists the slugs of
    earlier papers of the catalog that this one extends or starts from, as its own text says;
    ``builds_on_evidence`` says where (and says so when the paper could not be read).
    """

    slug: str
    title: str
    year: int
    tags: tuple[str, ...]
    code_url: str | None
    bibkey: str
    notebook: str
    short_title: str
    learn: str
    authors: tuple[str, ...] = ()
    venue: str | None = None
    builds_on: tuple[str, ...] = ()
    builds_on_evidence: str = ""


def _to_paper(entry: dict) -> Paper:
    return Paper(
        slug=entry["slug"],
        title=entry["title"],
        year=int(entry["year"]),
        tags=tuple(entry["tags"]),
        code_url=entry.get("code_url"),
        bibkey=entry["bibkey"],
        notebook=entry["notebook"],
        short_title=entry["short_title"],
        learn=entry["learn"],
        authors=tuple(entry.get("authors") or ()),
        venue=entry.get("venue"),
        builds_on=tuple(entry.get("builds_on") or ()),
        builds_on_evidence=entry.get("builds_on_evidence", ""),
    )


@functools.cache
def _load() -> tuple[Paper, ...]:
    text = resources.files("qteach.catalog").joinpath("papers.yaml").read_text(encoding="utf-8")
    entries = yaml.safe_load(text)["papers"]
    records = [_to_paper(e) for e in entries]
    return tuple(sorted(records, key=lambda p: (p.year, p.title.casefold())))


def papers() -> list[Paper]:
    """All distinct papers of the seed list, ordered by year, then title."""
    return list(_load())


def paper(slug: str) -> Paper:
    """The paper with this slug; ``KeyError`` listing close matches for an unknown one, ``TypeError`` for a
    ``slug`` that is not a str."""
    require_str(slug, "slug")
    by_slug = {p.slug: p for p in _load()}
    if slug in by_slug:
        return by_slug[slug]
    close = difflib.get_close_matches(slug, list(by_slug), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"no paper with slug {slug!r}{hint}")


def by_year(year: int) -> list[Paper]:
    """The papers of one year (2015-2020), in catalog order; ``TypeError`` for a ``year`` that is not an int,
    ``ValueError`` for another year."""
    if require_int(year, "year") not in YEARS:
        raise ValueError(f"year must be one of {YEARS[0]}..{YEARS[-1]}, got {year!r}")
    return [p for p in _load() if p.year == year]


def by_tag(tag: str) -> list[Paper]:
    """The papers carrying ``tag`` (one of :data:`TAGS`), in catalog order; ``TypeError`` for a ``tag`` that is not
    a str, ``ValueError`` for another tag."""
    if require_str(tag, "tag") not in TAGS:
        raise ValueError(f"tag must be one of {TAGS}, got {tag!r}")
    return [p for p in _load() if tag in p.tags]
