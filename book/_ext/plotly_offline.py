"""Serve one local copy of plotly.js to the pages that contain plotly figures.

Notebook figures are stored as HTML fragments without plotly.js (see ``qteach.viz``). At build time this
extension copies ``plotly.min.js`` from the installed plotly package into the site's ``_static/`` and adds it
to exactly the pages whose body holds a plotly figure. No CDN, no network: the book works offline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import plotly

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _add_static_dir(app):
    static = Path(app.outdir).parent / "_plotly_static"
    static.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PLOTLY_JS, static / "plotly.min.js")
    app.config.html_static_path.append(str(static))


def _add_script_where_needed(app, pagename, templatename, context, doctree):
    if "plotly-graph-div" in context.get("body", ""):
        app.add_js_file("plotly.min.js", priority=100)


def setup(app):
    app.connect("builder-inited", _add_static_dir)
    app.connect("html-page-context", _add_script_where_needed)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
