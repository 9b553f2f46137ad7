# Model Quantization, Paper by Paper: one entry point.
#   make book   set everything up, build the HTML book   (open _build/html/index.html, or `make serve`)
#   make test   set everything up, run every test         (unit, notebooks, book build, browser checks)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NB     ?=

.PHONY: setup browser book serve test test-unit test-notebooks test-html execute bench toc clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Headless Chromium for the browser checks of the built HTML (Debian's package; installed once).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (headless browser for the HTML checks)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

toc: setup
	$(PY) tools/generate_book.py

book: toc
	rm -rf _build/html
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going --quiet
	@echo "The book is in _build/html/index.html (or run: make serve)"

serve: book
	$(PY) -m http.server --directory _build/html 8000

# Execute one notebook top to bottom in a fresh kernel and store its outputs: make execute NB=notebooks/...ipynb
execute: setup
	@test -n "$(NB)" || { echo "usage: make execute NB=notebooks/<year>/<slug>.ipynb"; exit 2; }
	$(PY) tools/execute_notebook.py $(NB)

bench: setup
	$(PY) benchmarks/bench_bitops.py

test-unit: setup
	$(PY) -m pytest tests -q -n 2 --ignore=tests/test_html.py

test-notebooks: setup
	$(PY) -m pytest -q -n 2 --dist loadfile --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:randomly notebooks

test-html: browser book
	$(PY) -m pytest -q tests/test_html.py

test: test-unit test-notebooks test-html

clean:
	rm -rf _build book/_generated
