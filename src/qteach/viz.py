"""Plotly helpers for the book's figures, and the renderer that makes them work in the static HTML.

Every figure of the book is a plotly figure. In the HTML book the interactivity (sliders, hover, zoom) runs in
the browser with no kernel and no network: :func:`setup` registers a renderer that stores each figure as an HTML
fragment *without* plotly.js, and the book's ``plotly_offline`` Sphinx extension serves one local copy of
plotly.js to the pages that need it. In Colab the standard ``colab`` renderer is used.
"""

from __future__ import annotations

import sys

import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.io.base_renderers import MimetypeRenderer

from qteach import quant
from qteach._validate import require_bits

RENDERER = "qteach"
_LAYOUT = dict(template="plotly_white", height=420, margin=dict(l=60, r=20, t=60, b=50),
               font=dict(size=13))


class BookRenderer(MimetypeRenderer):
    """Stores a figure twice in the cell output: as plotly's JSON (JupyterLab, VS Code and nbviewer draw it)
    and as an HTML fragment without plotly.js (the static book draws it with its one local plotly.js)."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, include_plotlyjs=False, include_mathjax=False, full_html=False,
                           validate=False, config={"displaylogo": False, "responsive": True})
        return {"application/vnd.plotly.v1+json": fig_dict, "text/html": html}


def in_colab() -> bool:
    """True when running in Google Colab."""
    return "google.colab" in sys.modules


def setup() -> str:
    """Choose the plotly renderer for where the notebook runs; returns its name.

    Colab: plotly's own ``colab`` renderer. Everywhere else: the book renderer (see :class:`BookRenderer`).
    """
    if in_colab():
        pio.renderers.default = "colab"
    else:
        pio.renderers[RENDERER] = BookRenderer()
        pio.renderers.default = RENDERER
    return pio.renderers.default


def figure(title: str, xaxis_title: str, yaxis_title: str, **layout) -> go.Figure:
    """An empty figure in the book's style, with a title and labelled axes (say the units in the labels)."""
    for name, value in (("title", title), ("xaxis_title", xaxis_title), ("yaxis_title", yaxis_title)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, **{**_LAYOUT, **layout})
    return fig


def slider_figure(steps: dict, title: str, xaxis_title: str, yaxis_title: str, slider_label: str,
                  active: int = 0, **layout) -> go.Figure:
    """A figure whose slider switches between precomputed sets of traces.

    ``steps`` maps each slider label (e.g. ``"2 bits"``) to a list of plotly traces. All traces are stored once;
    the slider toggles their visibility, so it works in static HTML without a kernel.
    """
    if not isinstance(steps, dict) or not steps:
        raise ValueError("steps must be a non-empty dict mapping slider labels to lists of traces")
    labels = list(steps)
    active = int(active)
    if not 0 <= active < len(labels):
        raise ValueError(f"active must be in [0, {len(labels) - 1}], got {active}")
    fig = figure(title, xaxis_title, yaxis_title, **layout)
    owner = []
    for index, label in enumerate(labels):
        for trace in steps[label]:
            trace.visible = index == active
            fig.add_trace(trace)
            owner.append(index)
    slider_steps = [dict(label=str(label), method="update",
                         args=[{"visible": [o == index for o in owner]}]) for index, label in enumerate(labels)]
    fig.update_layout(sliders=[dict(active=active, steps=slider_steps, currentvalue=dict(prefix=f"{slider_label}: "),
                                    pad=dict(t=50))])
    return fig


def staircase(bits_options=(2, 3, 4, 5, 8), x_range: float = 1.5, signed: bool = True,
              symmetric: bool = True, num_points: int = 601) -> go.Figure:
    """The quantizer's staircase :math:`\\hat{x} = Q(x)` for the range [-1, 1], with a slider over bit widths.

    Built on :func:`qteach.quant.qparams` and :func:`qteach.quant.fake_quantize`; values outside [-1, 1]
    saturate (the flat ends), values inside snap to the nearest level.
    """
    x = torch.linspace(-x_range, x_range, num_points)
    steps = {}
    for bits in bits_options:
        bits = require_bits(bits, "bits_options")
        scale, zero_point = quant.qparams(-1.0, 1.0, bits, signed, symmetric)
        y = quant.fake_quantize(x, scale, zero_point, bits, signed)
        steps[f"{bits}"] = [
            go.Scatter(x=x.numpy(), y=x.numpy(), mode="lines", name="identity", line=dict(dash="dot", color="grey")),
            go.Scatter(x=x.numpy(), y=y.numpy(), mode="lines", name=f"Q(x), {bits} bits", line=dict(shape="hv")),
        ]
    return slider_figure(steps, "Uniform quantizer for the range [-1, 1]", "input x", "quantized Q(x)",
                         "bits", active=min(1, len(steps) - 1))


def histogram_with_levels(values: torch.Tensor, levels, title: str, xaxis_title: str = "value",
                          nbins: int = 80) -> go.Figure:
    """A histogram of ``values`` with a vertical line at each quantization level."""
    values = torch.as_tensor(values).detach().flatten().cpu().float()
    fig = figure(title, xaxis_title, "count")
    fig.add_trace(go.Histogram(x=values.numpy(), nbinsx=nbins, name="values", marker_color="#4C72B0"))
    for level in torch.as_tensor(levels).flatten().tolist():
        fig.add_vline(x=level, line=dict(color="#DD8452", width=1.5))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color="#DD8452"), name="levels"))
    return fig


def accuracy_vs_bits(results: dict, title: str = "Accuracy vs bit width", baseline: float | None = None,
                     xaxis_title: str = "bits") -> go.Figure:
    """Lines of accuracy (percent) against bit width, one per method.

    ``results`` maps a method name to ``{bits: accuracy}`` with accuracy in [0, 1], or to
    ``{bits: (mean, std)}`` for error bars. Numeric bit widths are sorted; labels such as ``"W1/A1"`` keep the
    order given. ``baseline`` draws the full-precision accuracy as a dashed line.
    """
    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict of method -> {bits: accuracy}")
    fig = figure(title, xaxis_title, "test accuracy (%)")
    for name, curve in results.items():
        bits = sorted(curve) if all(isinstance(b, (int, float)) for b in curve) else list(curve)
        pairs = [curve[b] if isinstance(curve[b], tuple) else (curve[b], None) for b in bits]
        error = [100 * s for _, s in pairs] if all(s is not None for _, s in pairs) else None
        fig.add_trace(go.Scatter(x=bits, y=[100 * m for m, _ in pairs], mode="lines+markers", name=name,
                                 error_y=dict(array=error) if error else None))
    if baseline is not None:
        fig.add_hline(y=100 * baseline, line=dict(dash="dash", color="grey"),
                      annotation_text="full precision", annotation_position="bottom right")
    fig.update_xaxes(type="category")
    return fig


def explore(update, *, button=None, **controls):
    """A live control panel for readers in a kernel: ipywidgets controls that re-run ``update`` on every change.

    ``update(**values)`` receives the controls' current values (keyword arguments named like the controls) and
    returns what to show: a plotly figure, text, anything Jupyter can display. Example::

        viz.explore(lambda bits: viz.staircase((bits,)), bits=widgets.IntSlider(4, 1, 8))

    Where one update is slow (it trains a network), pass ``button="Train"``: ``update`` then runs only when the
    reader presses that button, not on every change and not when the panel is created.

    The result is drawn into an ``Output`` widget with ``append_display_data`` rather than through
    ``ipywidgets.interact``: ``interact`` captures output through the kernel's message stream, which makes
    headless runners (nbclient, used by the book's tools) stall now and then (jupyter/nbclient#312). In the
    static HTML book a widget cannot run: the slider figures are the static equivalent.
    """
    import ipywidgets as widgets

    if not callable(update):
        raise TypeError(f"update must be callable, got {type(update).__name__}")
    if not controls or not all(isinstance(c, widgets.ValueWidget) for c in controls.values()):
        raise TypeError("controls must be ipywidgets value widgets passed by keyword, e.g. bits=IntSlider(...)")
    if button is not None and (not isinstance(button, str) or not button.strip()):
        raise TypeError(f"button must be the button's label (a non-empty str) or None, got {button!r}")
    output = widgets.Output()

    def refresh(_change=None):
        shown = update(**{name: control.value for name, control in controls.items()})
        if isinstance(shown, str):  # text is shown as text, not as its repr
            from IPython.display import Pretty

            shown = Pretty(shown)
        output.outputs = ()
        output.append_display_data(shown)

    if button is not None:
        run = widgets.Button(description=button, button_style="primary")
        run.on_click(refresh)
        return widgets.VBox([*controls.values(), run, output])
    for control in controls.values():
        control.observe(refresh, names="value")
    refresh()
    return widgets.VBox([*controls.values(), output])
