# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# <!-- The template of a paper's chapter (CONTRIBUTING.md). Copy it, fill in every <...>, delete these comments.
#      The header card and the Colab install cell are added by tools/sync_notebooks.py: do not write them. -->

# %% tags=["hide-cell"]
import ipywidgets as widgets
import plotly.graph_objects as go
import torch

import qteach
from qteach import data, display, train, viz
from qteach import nn as qnn
from qteach.papers import SLUG as paper  # <the paper's module>

qteach.set_seed(0)
viz.setup();  # the semicolon: a setup cell shows nothing

# %% [markdown]
# ## The idea
#
# <One paragraph in plain words: what the paper proposes and why it should work. Credit the authors, cite with
# {cite:p}`bibkey`.>
#
# In this chapter you will:
#
# - <learning objective 1>
# - <learning objective 2>

# %% [markdown]
# ## The mechanism
#
# <The paper's equations in LaTeX, numbered as in the paper (eq. 3), then the code that implements them.>

# %%
display.show_source(paper.MECHANISM)  # the mechanism only; the full source is folded below it

# %% [markdown]
# <A tiny example, small enough to check by hand, that makes one property visible. It is an exact cell: fixed
# tensors, rounded prints, the same output on every machine.>

# %%
w = torch.tensor([0.1, -0.5, 1.0, -2.0])
print("<what the example shows>:", paper.MECHANISM(w).tolist())

# %% [markdown]
# ## Experiment
#
# <The paper's claim, tested at small scale on offline data (digits, MNIST-1D, synthetic), against a baseline.
# Say the protocol: model, epochs, seeds.>

# %% tags=["machine-dependent"]
digits = data.digits()
accuracy = {}
for name, quantizer in (("float", None), ("<method>", paper.MECHANISM)):
    runs = []
    for seed in (0, 1, 2):
        qteach.set_seed(seed)
        model = torch.nn.Sequential(torch.nn.Flatten(), qnn.QuantLinear(64, 10, weight_quantizer=quantizer))
        runs.append(train.fit(model, digits, epochs=5, seed=seed, progress=False).final_test_accuracy)
    accuracy[name] = runs
display.table(["weights", "test accuracy (mean of 3 seeds)", "range over seeds"],
              [[name, f"{100 * sum(r) / len(r):.1f} %", f"{100 * min(r):.1f} - {100 * max(r):.1f} %"]
               for name, r in accuracy.items()])
# Every claim the prose makes about this table is asserted, with margins that hold on other CPUs and seeds.
assert sum(accuracy["float"]) / 3 > 0.9

# %% [markdown]
# <What the table shows, stated robustly: no number typed from it, no ranking smaller than the seed spread.>

# %% tags=["machine-dependent"]
fig = viz.figure("<title>", "<x axis, with units>", "<y axis, with units>")
fig  # every series its own colour (and marker where lines cross)

# %% [markdown]
# *Figure: <one sentence on what to look at>.*
#
# ## Explore
#
# <The key knob (bits, threshold, temperature): a plotly slider figure (viz.slider_figure) works in the HTML
# book; the live control below needs a kernel.>

# %%
viz.explore(lambda bits: viz.staircase((bits,)), bits=widgets.IntSlider(value=2, min=1, max=8))

# %% [markdown]
# ## Paper vs here
#
# | | Paper {cite:p}`bibkey` | This notebook |
# | --- | --- | --- |
# | Data | <the paper's data sets> | <ours> |
# | <result> | <the paper's number, with its data set and source> | <ours: "table above", or a glued number> |
#
# <What the small scale can show, what it cannot, and every simplification.>
#
# ## Exercises
#
# ```{exercise}
# :label: ex-SLUG-1
# <A code exercise that is not a copy of the shown code: change a knob and predict, implement a variant the paper
# mentions, find the bug.>
# ```

# %%
from qteach.exercises.SLUG import check_1


def answer(w):
    ### BEGIN SOLUTION
    return paper.MECHANISM(w)
    ### END SOLUTION


check_1(answer)

# %% [markdown]
# ````{solution} ex-SLUG-1
# :class: dropdown
# <Why the answer is right, then the code.>
#
# ```python
# def answer(w):
#     return paper.MECHANISM(w)
# ```
# ````
#
# ```{exercise}
# :label: ex-SLUG-2
# <A second exercise: a written one (predict, explain a measured number) or a code one with its check_2.>
# ```
#
# ```{solution} ex-SLUG-2
# :class: dropdown
# <The model answer.>
# ```
#
# ## Summary
#
# - <take-away 1>
# - <take-away 2>
# - <take-away 3>
#
# Related chapters: <links>. References: {cite:p}`bibkey`.
