# Model Quantization, Paper by Paper: one entry point.
#   make book   set everything up, build the HTML book   (open _build/html/index.html, or `make serve`)
#   make test   set everything up, run every test         (unit, notebooks, book build, browser checks)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NB     ?=
# Test workers: one per usable core, at least two (two kernels fill two cores; a bigger CI machine runs more).
WORKERS ?= $(shell $(PYTHON) tools/test_workers.py)


.PHONY: setup browser book book-instructors book-student colab serve test test-unit test-notebooks test-html test-quick execute bench toc clean

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

# The published book: exercises as the stubs a student starts from, solutions folded (_build/html)
book: toc
	$(PY) tools/build_book.py reader
	@echo "The book is in _build/html/index.html (or run: make serve)"

# The instructors' book: every solution worked out, with its output (_build/instructors/html)
book-instructors: toc
	$(PY) tools/build_book.py instructors

# The book with every solution removed, for handing out (_build/student/html)
book-student: toc
	$(PY) tools/build_book.py student

# Rewrite the notebooks the Colab buttons open (colab/<path>, generated from the notebooks; make execute does one)
colab: setup
	$(PY) tools/colab_copies.py

serve: book
	$(PY) -m http.server --directory _build/html 8000

# Execute one notebook top to bottom in a fresh kernel and store its outputs: make execute NB=notebooks/...ipynb
execute: setup
	@test -n "$(NB)" || { echo "usage: make execute NB=notebooks/<year>/<slug>.ipynb"; exit 2; }
	$(PY) tools/execute_notebook.py $(NB)

bench: setup
	$(PY) benchmarks/bench_bitops.py

test-unit: setup
	$(PY) -m pytest tests -q -n $(WORKERS) --ignore=tests/test_html.py --ignore=tests/notebooks

# Every notebook twice, one per core at a time: as stored on this CPU's kernels, and its student version as in
# Colab on forced other kernels (tests/notebooks/test_notebooks.py). One thread per kernel: a kernel per core.
test-notebooks: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest tests/notebooks -q -n $(WORKERS) -p no:randomly

test-html: browser book
	$(PY) -m pytest -q -n $$(( 2 * $(WORKERS) )) tests/test_html.py  # waits on pages more than it computes: 2 browsers a core

test: test-unit test-notebooks test-html

# Quick check while writing: the unit tests, then both runs of the notebooks you changed (or NB=...): those
# changed since the last commit, and those whose paper or exercise module changed.
test-quick: setup
	$(PY) -m pytest tests -q -n 2 -x --ignore=tests/test_html.py --ignore=tests/notebooks
	QTEACH_NOTEBOOKS="$$($(PY) tools/changed_notebooks.py $(NB))" OMP_NUM_THREADS=1 \
	  $(PY) -m pytest tests/notebooks -q -n 2 -p no:randomly

clean:
	rm -rf _build book/_generated
