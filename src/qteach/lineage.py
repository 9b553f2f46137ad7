"""The map of the field: every paper of the catalog placed by year, linked to the papers it builds on.

The figure is generated from the catalog (``short_title``, ``learn``, ``builds_on``) for the book's intro and
tag pages: one band per year, papers coloured by tag (hollow markers: chapter not written yet), grey lines from
each paper to the papers it builds on. Hovering shows the full title and what the chapter teaches; clicking a
paper whose chapter exists opens it. It works in the static HTML with the book's local plotly.js.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

from qteach import catalog

#: One colour per tag (colour-blind safe, from the Okabe-Ito palette) and a marker symbol, so the tags stay apart
#: in greyscale too.
TAG_STYLE = {"Binarization": ("#0072B2", "circle"), "Low-bit Quantization": ("#D55E00", "diamond"),
             "Hardware": ("#009E73", "square")}
PER_ROW = 4           # papers side by side in a year's band
ROW_HEIGHT = 40       # pixels per row of papers
BAND_GAP = 0.9        # extra space between years, in rows


def positions(papers: list[catalog.Paper]) -> dict[str, tuple[float, float]]:
    """``slug -> (x, y)``: each year a band of rows (newest at the bottom), papers grouped by first tag."""
    order = {tag: i for i, tag in enumerate(TAG_STYLE)}
    where, top = {}, 0.0
    for year in catalog.YEARS:
        in_year = sorted((p for p in papers if p.year == year), key=lambda p: (order[p.tags[0]], p.short_title))
        for index, p in enumerate(in_year):
            row, column = divmod(index, PER_ROW)
            where[p.slug] = (column + (0.5 if row % 2 else 0.0), -(top + row))
        if in_year:
            top += (len(in_year) - 1) // PER_ROW + 1 + BAND_GAP
    return where


def lineage_figure(papers: list[catalog.Paper] | None = None, link=None, written=None,
                   title: str = "The papers and what they build on") -> go.Figure:
    """The map of ``papers`` (default: the whole catalog).

    ``link(paper)`` gives the URL of a paper's chapter (``None``: no link), ``written(paper)`` whether its chapter
    exists (default: it has a link). Edges are drawn only between papers of the figure.
    """
    papers = catalog.papers() if papers is None else list(papers)
    if not papers or not all(isinstance(p, catalog.Paper) for p in papers):
        raise ValueError("papers must be a non-empty list of qteach.catalog.Paper")
    link = link or (lambda p: None)
    written = written or (lambda p: link(p) is not None)
    xy = positions(papers)
    fig = go.Figure()
    edge_x, edge_y = [], []
    for p in papers:
        for earlier in p.builds_on:
            if earlier in xy:
                edge_x += [xy[earlier][0], xy[p.slug][0], None]
                edge_y += [xy[earlier][1], xy[p.slug][1], None]
    fig.add_trace(go.Scatter(x=edge_x, y=edge_y, mode="lines", line=dict(color="#BBBBBB", width=1),
                             hoverinfo="skip", name="builds on", showlegend=False))
    for tag, (colour, symbol) in TAG_STYLE.items():
        members = [p for p in papers if p.tags[0] == tag]
        if not members:
            continue
        fig.add_trace(go.Scatter(
            x=[xy[p.slug][0] for p in members], y=[xy[p.slug][1] for p in members], mode="markers+text",
            name=tag, text=[p.short_title for p in members], textposition="bottom center",
            textfont=dict(size=9), customdata=[link(p) or "" for p in members],
            hovertext=[f"<b>{p.title}</b><br>{p.year} · {', '.join(p.tags)}<br>{p.learn}"
                       + ("" if written(p) else "<br><i>chapter not written yet</i>") for p in members],
            hoverinfo="text",
            marker=dict(size=12, color=[colour if written(p) else "white" for p in members], symbol=symbol,
                        line=dict(color=colour, width=2))))
    years = sorted({p.year for p in papers})
    first_row = {y: max(xy[p.slug][1] for p in papers if p.year == y) for y in years}
    rows = -min(v for _, v in xy.values()) + 1
    fig.update_layout(
        title=dict(text=title, y=1, yanchor="top", yref="container", pad=dict(t=10)), template="plotly_white", height=int(120 + ROW_HEIGHT * rows), hovermode="closest",
        margin=dict(l=50, r=10, t=100, b=10),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, font=dict(size=11)),
        font=dict(size=12))
    fig.update_xaxes(visible=False, range=[-0.75, PER_ROW - 0.5 + 0.75])
    fig.update_yaxes(tickvals=[first_row[y] for y in years], ticktext=[str(y) for y in years], zeroline=False,
                     showgrid=False, range=[-rows + 0.3, 0.7], title="year")
    return fig


def lineage_html(fig: go.Figure) -> str:
    """The figure as an HTML fragment without plotly.js (the book serves it), where a click opens a chapter; on a
    narrow screen (a phone) the names are hidden, and a tap shows them."""
    script = ("var gd = document.getElementById('{plot_id}');"
              " gd.on('plotly_click', function (event) {"
              " var url = event.points[0].customdata; if (url) { window.location.href = url; } });"
              " if (gd.offsetWidth < 600) {"
              " Plotly.restyle(gd, {mode: 'markers'}, gd.data.map(function (t, i) { return i; }).slice(1)); }")
    return pio.to_html(fig, include_plotlyjs=False, include_mathjax=False, full_html=False,
                       config={"displaylogo": False, "responsive": True}, post_script=script)
