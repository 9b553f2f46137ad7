"""The survey chapter's taxonomy: every binarization chapter placed exactly once, in a category that exists."""

from __future__ import annotations

import pytest

from qteach import catalog, comparison
from qteach.papers import bnn_survey as survey


def test_every_binarization_chapter_is_placed_exactly_once():
    chapters = survey.binarization_chapters()
    assert len(chapters) == len(set(chapters))
    # a new Binarization chapter with a notebook must be placed; a placed slug must be such a chapter
    assert set(chapters) == set(survey.CHAPTERS), set(chapters) ^ set(survey.CHAPTERS)
    placed = [s for c in survey.TAXONOMY for s in survey.chapters_in(c)]
    assert sorted(placed) == sorted(survey.CHAPTERS)  # each slug in exactly one category


def test_every_category_exists_and_has_chapters():
    assert set(survey.SURVEY_CATEGORIES) <= set(survey.TAXONOMY)
    assert len(survey.SURVEY_CATEGORIES) == 6
    for slug, (category, reason) in survey.CHAPTERS.items():
        assert category in survey.TAXONOMY, (slug, category)
        assert isinstance(reason, str) and 10 < len(reason) <= 90, (slug, reason)
    for category in survey.TAXONOMY:
        assert survey.chapters_in(category), category
    assert set(survey.REPRESENTATIVES) <= set(survey.SURVEY_CATEGORIES)


def test_hardware_chapters_go_to_hardware_friendly_design():
    for paper in catalog.papers():
        if paper.slug in survey.CHAPTERS and "Hardware" in paper.tags:
            assert survey.category_of(paper.slug) == survey.HARDWARE, paper.slug


def test_placement_follows_the_results_pages_changes():
    """A method the results pages mark as changing the gradient is in the gradient category (its main change)."""
    for method in comparison.methods():
        if method.changes == "gradient" and method.paper != "trained_binarization":  # scales first, see reason
            assert survey.category_of(method.paper) == survey.GRADIENT, method.paper
    assert survey.category_of("binarized_neural_networks") == survey.NAIVE
    assert survey.category_of("xnor_net") == survey.QUANTIZATION_ERROR


def test_counts_add_up_and_grow_with_the_years():
    total = survey.counts_by_year()
    assert sum(total.values()) == len(survey.CHAPTERS)
    previous = {c: 0 for c in survey.TAXONOMY}
    for year in catalog.YEARS:
        counts = survey.counts_by_year(year)
        assert all(counts[c] >= previous[c] for c in counts)
        previous = counts
    assert previous == total
    assert survey.counts_by_year(2015)[survey.NAIVE] == 2  # BinaryConnect and the bitwise network (hand count)


def test_rows_and_figure():
    rows = survey.taxonomy_rows()
    assert [r[0] for r in rows] == list(survey.TAXONOMY)
    assert sum(r[2] for r in rows) == len(survey.CHAPTERS)
    assert [r[1] for r in rows].count("survey") == 6
    fig = survey.taxonomy_figure()
    assert len(fig.data) == len(catalog.YEARS)
    last = fig.data[-1]
    assert list(last.x) == list(survey.counts_by_year().values())


def test_representatives_are_one_binary_method_per_category():
    methods = survey.representative_methods()
    assert [m.paper for m in methods] == [s for s, _ in survey.REPRESENTATIVES.values()]
    assert all((1, 1) in m.configs for m in methods)
    assert [survey.category_of(m.paper) for m in methods] == list(survey.REPRESENTATIVES)


@pytest.mark.parametrize("call,error,name", [
    (lambda: survey.category_of(3), TypeError, "slug"),
    (lambda: survey.category_of("no_such_paper"), ValueError, "slug"),
    (lambda: survey.category_of("bnn_survey"), ValueError, "slug"),
    (lambda: survey.chapters_in("quantization"), ValueError, "category"),
    (lambda: survey.chapters_in(None), TypeError, "category"),
    (lambda: survey.counts_by_year("2018"), TypeError, "up_to"),
    (lambda: survey.counts_by_year(True), TypeError, "up_to"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
