"""The map of the field (qteach.lineage) and the catalog-generated pages that show it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from qteach import catalog, lineage

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("generate_book", ROOT / "tools" / "generate_book.py")
generate_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate_book)


def test_every_paper_has_its_own_place_in_its_year():
    xy = lineage.positions(catalog.papers())
    assert set(xy) == {p.slug for p in catalog.papers()}
    assert len(set(xy.values())) == len(xy)
    for earlier, later in zip(catalog.YEARS, catalog.YEARS[1:]):  # every year's band lies above the next one
        assert min(xy[p.slug][1] for p in catalog.by_year(earlier)) > max(xy[p.slug][1] for p in catalog.by_year(later))


def test_the_figure_draws_every_edge_of_the_catalog_and_links_written_chapters():
    papers = catalog.papers()
    fig = lineage.lineage_figure(papers, link=lambda p: f"/{p.slug}.html" if p.year == 2016 else None)
    edges = fig.data[0]
    assert len(edges.x) == 3 * sum(len(p.builds_on) for p in papers)
    nodes = [t for t in fig.data[1:]]
    assert sum(len(t.x) for t in nodes) == len(papers)
    assert {t.name for t in nodes} == set(lineage.TAG_STYLE)
    links = {text: url for t in nodes for text, url in zip(t.text, t.customdata)}
    assert links["XNOR-Net"] == "/xnor_net.html" and links["HWGQ"] == ""
    html = lineage.lineage_html(fig)
    assert "plotly_click" in html and "<script src" not in html  # plotly.js comes from the book, not a CDN


def test_a_tag_map_draws_only_edges_inside_it():
    hardware = catalog.by_tag("Hardware")
    fig = lineage.lineage_figure(hardware)
    inside = {p.slug for p in hardware}
    assert len(fig.data[0].x) == 3 * sum(e in inside for p in hardware for e in p.builds_on)


@pytest.mark.parametrize("papers", [[], ["xnor_net"], [None]])
def test_bad_papers(papers):
    with pytest.raises(ValueError, match="papers"):
        lineage.lineage_figure(papers)


def test_generated_pages_link_the_map_reading_paths_and_one_liners():
    field_map = generate_book.field_map_page()
    assert field_map.count("plotly-graph-div") == 1
    for name, path in catalog.READING_PATHS.items():
        assert f"**{name}**" in field_map
    assert "[XNOR-Net](/notebooks/2016/xnor_net)" in field_map
    # the figure's click target, relative to book/intro.html (plotly's JSON writes / as \\u002f)
    assert "../notebooks/2016/xnor_net.html" in field_map.replace("\\u002f", "/")
    year = generate_book.year_page(2016)
    assert all(p.learn.replace("|", "\\|") in year for p in catalog.by_year(2016))
    assert generate_book.tag_page("Hardware").count("plotly-graph-div") == 1
    assert "{include} _generated/field_map.md" in (ROOT / "book" / "intro.md").read_text()
