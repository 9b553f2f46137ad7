"""Tests of qteach.hw (cost models), qteach.viz (plotly helpers), qteach.checks, qteach.display and seeding."""

from __future__ import annotations

import inspect
import random
import re
import sys
import types

import nbformat
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

import qteach
from qteach import catalog, checks, display, hw, quant, viz
from qteach._validate import require_bits

# ---------------------------------------------------------------------------------------------------- hw


@pytest.mark.parametrize("kind, bits, expected", [
    ("int", 8, 0.2 + 0.03),     # Horowitz 2014, 45 nm: int8 mult 0.2 pJ, add 0.03 pJ
    ("int", 32, 3.1 + 0.1),
    ("float", 16, 1.1 + 0.4),
    ("float", 32, 3.7 + 0.9),
])
def test_mac_energy_pj(kind, bits, expected):
    assert hw.mac_energy_pj(kind, bits) == pytest.approx(expected)


def test_mac_energy_pj_headline_numbers():
    assert hw.mac_energy_pj("int", 8) == pytest.approx(0.23)
    assert hw.mac_energy_pj("float", 32) == pytest.approx(4.6)
    assert hw.mac_energy_pj("float", 32) / hw.mac_energy_pj("int", 8) == pytest.approx(20.0)


@pytest.mark.parametrize("kind, bits", [("int", 16), ("int", 4), ("float", 8), ("bfloat", 16),
                                        ("xnor", 1)])
def test_mac_energy_pj_unknown_width_raises(kind, bits):
    with pytest.raises(ValueError, match="kind"):
        hw.mac_energy_pj(kind, bits)


@pytest.mark.parametrize("bits, error", [(0, ValueError), (64, ValueError), (8.0, TypeError)])
def test_mac_energy_pj_bad_bits(bits, error):
    with pytest.raises(error, match="bits"):
        hw.mac_energy_pj("int", bits)


@pytest.mark.parametrize("num_bits, level, expected", [
    (64, "dram", 1300.0), (65, "dram", 2600.0), (0, "dram", 0.0), (1, "sram_8kb", 10.0),
    (8 * 64, "sram_1mb", 800.0),
])
def test_memory_access_energy_pj(num_bits, level, expected):
    assert hw.memory_access_energy_pj(num_bits, level) == pytest.approx(expected)


@pytest.mark.parametrize("size, kernel, stride, padding, expected", [
    (32, 3, 1, 1, 32),   # "same" padding
    (32, 3, 2, 1, 16),
    (28, 5, 1, 0, 24),
    (7, 3, 2, 0, 3),
    (8, 8, 1, 0, 1),
    (224, 7, 2, 3, 112),  # ResNet stem
    (1, 3, 1, 1, 1),
])
def test_conv2d_output_size(size, kernel, stride, padding, expected):
    assert hw.conv2d_output_size(size, kernel, stride, padding) == expected


def test_conv2d_output_size_matches_torch():
    for size, kernel, stride, padding in [(13, 3, 2, 1), (10, 4, 3, 2), (9, 1, 1, 0)]:
        out = torch.nn.functional.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, kernel, kernel),
                                         stride=stride, padding=padding)
        assert hw.conv2d_output_size(size, kernel, stride, padding) == out.shape[-1]


@pytest.mark.parametrize("args, expected", [
    ((3, 64, 3, 32, 32), 3 * 64 * 9 * 32 * 32),   # 1,769,472
    ((64, 64, 3, 56, 56), 115_605_504),           # a ResNet-18 3x3 layer
    ((1, 1, 1, 1, 1), 1),
    ((16, 8, 5, 4, 2), 16 * 8 * 25 * 8),
    ((16, 16, (1, 5), 1, 20), 16 * 16 * 5 * 20),    # a 1 x 5 kernel
    ((16, 16, (1, 5), 1, 20, 16), 16 * 5 * 20),     # depth-wise: one input channel per output channel
    ((8, 4, 3, 7, 7, 4), 2 * 4 * 9 * 49),           # 4 groups of 2 input channels
])
def test_conv2d_macs(args, expected):
    assert hw.conv2d_macs(*args) == expected


def test_conv2d_macs_equals_the_multiplications_of_a_grouped_convolution():
    conv = torch.nn.Conv2d(6, 9, (2, 3), groups=3, bias=False)
    out = conv(torch.ones(1, 6, 5, 7))  # every product is 1 x a weight: count them through the weights' uses
    per_output = conv.weight[0].numel()  # C_in / g x k_h x k_w multiply-accumulates per output value
    assert hw.conv2d_macs(6, 9, (2, 3), *out.shape[2:], groups=3) == per_output * out.numel()


def test_linear_macs():
    assert hw.linear_macs(784, 10) == 7840


@pytest.mark.parametrize("macs, weight_bits, input_bits, expected", [
    (100, 1, 1, 100), (100, 8, 8, 6400), (1, 32, 32, 1024), (10, 1, 8, 80), (0, 4, 4, 0)])
def test_bops(macs, weight_bits, input_bits, expected):
    assert hw.bops(macs, weight_bits, input_bits) == expected


def test_layer_traffic_bits():
    assert hw.layer_traffic_bits(100, 10, 5, 1, 8, 32) == 100 * 1 + 10 * 8 + 5 * 32


def test_arithmetic_intensity():
    assert hw.arithmetic_intensity(100.0, 50.0) == pytest.approx(2.0)


@pytest.mark.parametrize("intensity, expected", [
    (0.0, 0.0),
    (5.0, 50.0),     # below the ridge point I* = 100 / 10 = 10: memory-bound, I * B
    (10.0, 100.0),   # at the ridge
    (20.0, 100.0),   # above: compute-bound, the peak
    (1e9, 100.0),
])
def test_roofline(intensity, expected):
    assert hw.roofline(intensity, peak_ops_per_s=100.0, bandwidth_bytes_per_s=10.0) == pytest.approx(expected)


@pytest.mark.parametrize("function, args, error, name", [
    (hw.conv2d_output_size, (3, 5), ValueError, "kernel"),
    (hw.conv2d_output_size, (32, 3, 0), ValueError, "stride"),
    (hw.conv2d_output_size, (32, 3, 1, -1), ValueError, "padding"),
    (hw.conv2d_output_size, (0, 3), ValueError, "size"),
    (hw.conv2d_output_size, (32.0, 3), TypeError, "size"),
    (hw.conv2d_macs, (0, 64, 3, 32, 32), ValueError, "in_channels"),
    (hw.conv2d_macs, (3, 64, 3, 0, 32), ValueError, "out_height"),
    (hw.conv2d_macs, (6, 4, 3, 5, 5, 4), ValueError, "groups"),
    (hw.conv2d_macs, (6, 4, (3, 0), 5, 5), ValueError, "kernel"),
    (hw.linear_macs, (0, 10), ValueError, "in_features"),
    (hw.bops, (-1, 8, 8), ValueError, "macs"),
    (hw.bops, (10, 0, 8), ValueError, "weight_bits"),
    (hw.bops, (10, 8, 33), ValueError, "input_bits"),
    (hw.bops, (10, True, 8), TypeError, "weight_bits"),
    (hw.memory_access_energy_pj, (64, "l2"), ValueError, "level"),
    (hw.memory_access_energy_pj, (-1,), ValueError, "num_bits"),
    (hw.arithmetic_intensity, (-1.0, 1.0), ValueError, "ops"),
    (hw.arithmetic_intensity, (1.0, 0.0), ValueError, "bytes_moved"),
    (hw.roofline, (-1.0, 100.0, 10.0), ValueError, "intensity"),
    (hw.roofline, (float("nan"), 100.0, 10.0), ValueError, "intensity"),
    (hw.roofline, (1.0, 0.0, 10.0), ValueError, "peak_ops_per_s"),
    (hw.roofline, (1.0, 100.0, -10.0), ValueError, "bandwidth_bytes_per_s"),
])
def test_hw_bad_input(function, args, error, name):
    with pytest.raises(error, match=name):
        function(*args)


# -------------------------------------------------------------------------------------------------- viz


@pytest.fixture
def restore_renderer():
    previous = pio.renderers.default
    yield
    pio.renderers.default = previous


def test_setup_outside_colab_uses_book_renderer(restore_renderer, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert viz.setup() == "qteach"
    assert pio.renderers.default == "qteach"


def test_setup_in_colab_uses_colab_renderer(restore_renderer, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert viz.setup() == "colab"


def test_book_renderer_bundle_has_html_without_plotlyjs_and_json(restore_renderer, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    viz.setup()
    fig = viz.figure("t", "x (units)", "y (units)")
    fig.add_trace(go.Scatter(x=[1, 2, 3], y=[4, 5, 6], name="line"))
    bundle = pio.renderers["qteach"].to_mimebundle(fig.to_dict())
    html = bundle["text/html"]
    assert "<div" in html and "Plotly.newPlot" in html
    assert "<script src" not in html           # include_plotlyjs=False: no plotly.js, local or CDN
    assert "cdn.plot.ly" not in html
    assert len(html) < 100_000                  # plotly.js itself is megabytes
    figure_json = bundle["application/vnd.plotly.v1+json"]
    assert list(figure_json["data"][0]["y"]) == [4, 5, 6]


def test_figure_has_titles():
    fig = viz.figure("Title", "x axis", "y axis")
    assert fig.layout.title.text == "Title"
    assert fig.layout.xaxis.title.text == "x axis" and fig.layout.yaxis.title.text == "y axis"


@pytest.mark.parametrize("active", [0, 1, 2])
def test_slider_figure_toggles_visibility(active):
    steps = {"a": [go.Scatter(y=[1]), go.Scatter(y=[2])], "b": [go.Scatter(y=[3])],
             "c": [go.Scatter(y=[4]), go.Scatter(y=[5]), go.Scatter(y=[6])]}
    owner = [0, 0, 1, 2, 2, 2]
    fig = viz.slider_figure(steps, "t", "x", "y", "step", active=active)
    assert len(fig.data) == 6
    assert [trace.y[0] for trace in fig.data] == [1, 2, 3, 4, 5, 6]
    slider = fig.layout.sliders[0]
    assert slider.active == active
    assert [s.label for s in slider.steps] == ["a", "b", "c"]
    for index, step in enumerate(slider.steps):
        assert list(step.args[0]["visible"]) == [o == index for o in owner]
    assert [bool(trace.visible) for trace in fig.data] == [o == active for o in owner]


@pytest.mark.parametrize("kwargs, name", [
    (dict(steps={}), "steps"),
    (dict(steps=[go.Scatter()]), "steps"),
    (dict(active=3), "active"),
    (dict(active=-1), "active"),
    (dict(title=""), "title"),
])
def test_slider_figure_bad_input(kwargs, name):
    arguments = dict(steps={"a": [go.Scatter()], "b": [go.Scatter()], "c": [go.Scatter()]}, title="t",
                     xaxis_title="x", yaxis_title="y", slider_label="s")
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=name):
        viz.slider_figure(**arguments)


def quantized_traces(fig):
    return [trace for trace in fig.data if trace.name.startswith("Q(x)")]


@pytest.mark.parametrize("bits_options", [(1, 2, 3, 4, 8), (2, 5)])
def test_staircase_has_one_step_per_bit_width(bits_options):
    fig = viz.staircase(bits_options)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == [str(b) for b in bits_options]
    assert len(quantized_traces(fig)) == len(bits_options)


@pytest.mark.parametrize("signed, symmetric", [(True, True), (False, False), (True, False)])
def test_staircase_levels_at_most_2_to_the_bits(signed, symmetric):
    bits_options = (1, 2, 3, 4, 8)
    fig = viz.staircase(bits_options, signed=signed, symmetric=symmetric)
    for bits, trace in zip(bits_options, quantized_traces(fig)):
        assert len(set(np.asarray(trace.y).tolist())) <= 2 ** bits
        assert f"{bits} bits" in trace.name


def test_staircase_trace_is_fake_quantize():
    fig = viz.staircase((3,), num_points=101)
    trace = quantized_traces(fig)[0]
    x = torch.as_tensor(np.asarray(trace.x), dtype=torch.float32)
    scale, zero_point = quant.qparams(-1.0, 1.0, 3, True, True)
    np.testing.assert_array_equal(np.asarray(trace.y), quant.fake_quantize(x, scale, zero_point, 3, True).numpy())


def test_staircase_bad_bits():
    with pytest.raises(ValueError, match="bits"):
        viz.staircase((0, 2))


def test_accuracy_vs_bits_without_error_bars():
    fig = viz.accuracy_vs_bits({"BNN": {8: 0.9, 1: 0.5, 2: 0.7}})
    (trace,) = fig.data
    assert list(trace.x) == [1, 2, 8]  # sorted by bit width
    assert list(trace.y) == pytest.approx([50.0, 70.0, 90.0])
    assert trace.error_y.array is None
    assert fig.layout.xaxis.type == "category"


def test_accuracy_vs_bits_with_error_bars():
    fig = viz.accuracy_vs_bits({"DoReFa": {4: (0.8, 0.02), 2: (0.6, 0.01)}, "PACT": {2: 0.65, 4: 0.85}})
    dorefa, pact = fig.data
    assert list(dorefa.y) == pytest.approx([60.0, 80.0])
    assert list(dorefa.error_y.array) == pytest.approx([1.0, 2.0])
    assert pact.error_y.array is None
    assert [dorefa.name, pact.name] == ["DoReFa", "PACT"]


def test_accuracy_vs_bits_baseline_line():
    fig = viz.accuracy_vs_bits({"a": {1: 0.5}}, baseline=0.95)
    assert len(fig.layout.shapes) == 1
    assert fig.layout.shapes[0].y0 == pytest.approx(95.0)
    assert len(viz.accuracy_vs_bits({"a": {1: 0.5}}).layout.shapes) == 0


@pytest.mark.parametrize("results", [{}, [], None])
def test_accuracy_vs_bits_bad_results(results):
    with pytest.raises(ValueError, match="results"):
        viz.accuracy_vs_bits(results)


# ----------------------------------------------------------------------------------------------- checks

LABEL = "ex-xnor_net-1"


def test_passed_prints_success_line(capsys):
    line = checks.passed(LABEL, "alpha is the mean absolute value")
    assert line == "✅ ex-xnor_net-1 passed: alpha is the mean absolute value"
    assert capsys.readouterr().out == line + "\n"


def test_expect_true_is_silent(capsys):
    checks.expect(True, LABEL, "hint")
    assert capsys.readouterr().out == ""


def test_expect_false_raises_with_label_and_hint():
    with pytest.raises(AssertionError) as info:
        checks.expect(False, LABEL, "use the mean of |W|")
    assert str(info.value) == "ex-xnor_net-1: use the mean of |W|"


@pytest.mark.parametrize("actual, expected", [
    (1.0, 1.0 + 1e-9), (3, 3.0), (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-8]))])
def test_expect_close_passes(actual, expected):
    checks.expect_close(actual, expected, LABEL, "alpha")


@pytest.mark.parametrize("actual, expected", [
    (1.0, 1.1),
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5])),
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0, 3.0])),   # shape mismatch
    ([1.0, 2.0], torch.tensor([1.0, 2.0])),                      # not a tensor
    ("1.0", 1.0),                                                # not a number
])
def test_expect_close_fails_with_label(actual, expected):
    with pytest.raises(AssertionError) as info:
        checks.expect_close(actual, expected, LABEL, "alpha", hint="check the axis")
    assert str(info.value).startswith("ex-xnor_net-1: ")
    assert "alpha" in str(info.value)


def test_expect_type_fails_with_label():
    with pytest.raises(AssertionError, match=r"^ex-xnor_net-1: .*Tensor"):
        checks.expect_type([1.0], torch.Tensor, LABEL, "the weights")


@pytest.mark.parametrize("label", ["xnor_net-1", "ex-XNOR-1", "ex-xnor net-1", "ex-xnor_net", 5, None])
def test_bad_label_raises_value_error_on_failure(label):
    with pytest.raises(ValueError, match="exercise"):
        checks.fail(label, "hint")
    with pytest.raises(ValueError, match="exercise"):
        checks.passed(label, "what")


@pytest.mark.parametrize("call", [
    lambda label: checks.expect(True, label, "hint"),
    lambda label: checks.expect_type(1.0, float, label, "alpha"),
    lambda label: checks.expect_close(1.0, 1.0, label, "alpha"),
    lambda label: checks.as_number(1.0, label, "alpha"),
])
@pytest.mark.parametrize("label", ["xnor_net-1", None])
def test_bad_label_raises_value_error_even_when_the_answer_passes(call, label):
    with pytest.raises(ValueError, match="exercise"):
        call(label)


@pytest.mark.parametrize("call, error, name", [
    (lambda: checks.expect(torch.tensor([True, False]), LABEL, "hint"), TypeError, "condition"),
    (lambda: checks.expect(np.array([True, True]), LABEL, "hint"), TypeError, "condition"),
    (lambda: checks.expect(True, LABEL, 42), TypeError, "hint"),
    (lambda: checks.fail(LABEL, None), TypeError, "hint"),
    (lambda: checks.passed(LABEL, 3), TypeError, "what"),
    (lambda: checks.expect_type(1, "int", LABEL, "alpha"), TypeError, "expected_type"),
    (lambda: checks.expect_type(1, (), LABEL, "alpha"), TypeError, "expected_type"),
    (lambda: checks.expect_type(1, (int, "float"), LABEL, "alpha"), TypeError, "expected_type"),
    (lambda: checks.expect_close(1.0, float("nan"), LABEL, "alpha"), ValueError, "expected"),
    (lambda: checks.expect_close(1.0, torch.tensor([float("nan")]), LABEL, "alpha"), ValueError, "expected"),
    (lambda: checks.expect_close(1.0, "1.0", LABEL, "alpha"), TypeError, "expected"),
    (lambda: checks.expect_close(1.0, True, LABEL, "alpha"), TypeError, "expected"),
    (lambda: checks.expect_close(1.0, 1.0, LABEL, "alpha", rtol=-1e-5), ValueError, "rtol"),
    (lambda: checks.expect_close(1.0, 1.0, LABEL, "alpha", atol=float("nan")), ValueError, "atol"),
    (lambda: checks.expect_close(1.0, 1.0, LABEL, "alpha", atol="0"), TypeError, "atol"),
    (lambda: checks.expect_close(1.0, 1.0, LABEL, "alpha", hint=None), TypeError, "hint"),
])
def test_a_mistake_in_the_check_itself_names_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_expect_close_accepts_numpy_numbers():
    checks.expect_close(1.0, np.float32(1.0), LABEL, "alpha")
    checks.expect_close(2, np.int64(2), LABEL, "alpha")


# ---------------------------------------------------------------------------------------------- display


def test_glue_stores_a_hidden_value_where_the_book_finds_it():
    from myst_nb.ext.glue import extract_glue_data_cell

    data, metadata = display.glue_bundle("binary_speedup", np.float32(2.5))
    cell = nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("display_data", data=data,
                                                                           metadata=metadata)])
    [(name, found)] = extract_glue_data_cell(cell)
    assert name == "binary_speedup" and found["data"] == {"text/plain": "2.5"}
    assert not any(key in data for key in ("text/plain", "text/html"))  # nothing shown in Jupyter
    assert display.glue_bundle("n", 3)[0] == {display.GLUE_PREFIX + "text/plain": "3"}
    assert display.glue_bundle("label", "AVX-512")[0] == {display.GLUE_PREFIX + "text/plain": "'AVX-512'"}


@pytest.mark.parametrize(("name", "value", "error"), [
    ("two words", 1.0, ValueError), ("", 1.0, ValueError), (3, 1.0, TypeError), ("ok", True, TypeError),
    ("ok", [1.0], TypeError), ("ok", None, TypeError),
])
def test_glue_names_its_bad_arguments(name, value, error):
    with pytest.raises(error, match="name|value"):
        display.glue_bundle(name, value)


def _every_check():
    import importlib
    import pkgutil

    import qteach.exercises

    for info in pkgutil.iter_modules(qteach.exercises.__path__):
        module = importlib.import_module(f"qteach.exercises.{info.name}")
        for name, function in vars(module).items():
            if re.fullmatch(r"check_\d+", name):
                yield f"{info.name}.{name}", function


@pytest.mark.parametrize(("name", "check"), list(_every_check()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_exercise_check_is_a_self_check(name, check):
    """So that every stub in the book and in Colab says "not attempted" (executed: the notebooks' colab run)."""
    assert getattr(check, "__wrapped__", None) is not None, f"{name} is not decorated with @self_check"
    assert check.__code__ is checks.self_check(check.__wrapped__).__code__


def test_self_check_turns_a_stub_into_not_attempted(capsys):
    def check_7(answer):
        return checks.passed("ex-demo-7", "ran") if answer() else None

    check_7.__module__ = "qteach.exercises.demo"
    decorated = checks.self_check(check_7)

    def stub():
        raise NotImplementedError("Exercise 7: a stub")

    line = decorated(stub)
    assert line == capsys.readouterr().out.strip()
    assert line.startswith("⬜ ex-demo-7 not attempted yet")
    assert decorated(lambda: True).startswith("✅ ex-demo-7 passed")
    with pytest.raises(AssertionError):  # a wrong answer still fails with its hint
        checks.self_check(check_7)(lambda: checks.fail("ex-demo-7", "hint"))


@pytest.mark.parametrize("function", [lambda answer: None, print])
def test_self_check_needs_a_check_of_the_exercises_package(function):
    with pytest.raises(ValueError, match="check"):
        checks.self_check(function)


def test_show_source_full_is_markdown_code_block_with_def_line():
    md = display.show_source(quant.qrange, full=True)
    text = md._repr_markdown_()
    assert text.startswith("```python\n") and text.endswith("\n```")
    assert "def qrange(bits: int, signed: bool) -> tuple[int, int]:" in text
    assert repr(md) == text


def test_show_source_several_objects_and_classes():
    text = display.show_source(quant.qrange, display.Markdown, full=True)._repr_markdown_()
    assert text.count("```") == 2
    assert text.index("def qrange(") < text.index("class Markdown")


def _checked(x, bits=4):
    """A docstring."""
    require_bits(bits)
    if x < 0:
        raise ValueError("x must be >= 0")
    y = x * 2
    if y > 10:
        raise ValueError("kept: a check after the mechanism started")
    return y


def _plain(x):
    return x + 1


def _defines(a, b):
    a = require_bits(a)
    k = require_bits(b)
    if k > 8:
        raise ValueError("b")
    return a * k


def test_a_validator_that_defines_a_new_name_stays_visible():
    shown = display.show_source(_defines).text.split("<details>")[0]
    assert "a = require_bits(a)" not in shown and "k = require_bits(b)" in shown and 'raise ValueError("b")' not in shown
    assert shown.count(display.CHECKS_OMITTED) == 1


def test_show_source_shows_the_mechanism_and_folds_the_full_source():
    text = display.show_source(_checked).text
    shown, folded = text.split("<details>")
    assert "A docstring" not in shown and "require_bits" not in shown and "x must be >= 0" not in shown
    assert display.CHECKS_OMITTED in shown and "y = x * 2" in shown and "kept: a check" in shown
    assert "A docstring" in folded and "require_bits(bits)" in folded and folded.rstrip().endswith("</details>")


def test_show_source_without_docstring_or_checks_has_nothing_to_fold():
    assert display.show_source(_plain).text == "```python\ndef _plain(x):\n    return x + 1\n```"


def test_mechanism_of_a_class_drops_method_docstrings_and_checks():
    shown = display.mechanism(inspect.getsource(display.Table))
    assert "class Table:" in shown and "def _repr_html_" in shown
    assert '"""' not in shown and "must be a non-empty list" not in shown
    assert shown.count(display.CHECKS_OMITTED) == 1  # __init__'s checks


def test_show_source_full_must_be_a_bool():
    with pytest.raises(TypeError, match="full"):
        display.show_source(_plain, full="yes")


def test_table_text_html_and_sort_keys():
    t = display.Table(["method", "accuracy"], [["TTQ <2 bits>", "89.8 %"], ["float", "1,024.5 s"], ["x", "-4.0"]])
    assert t.text.splitlines() == ["method         accuracy", "------------  ---------",
                                   "TTQ <2 bits>     89.8 %", "float         1,024.5 s", "x                  -4.0"]
    page = t._repr_html_()
    assert "&lt;2 bits&gt;" in page and "<2 bits>" not in page
    assert 'data-key="89.8"' in page and 'data-key="1024.5"' in page and 'data-key="-4.0"' in page
    assert page.count("<tr>") == 4 and "addEventListener" in page and 'style="overflow-x:auto"' in page
    assert t._repr_html_() == page  # the same table gets the same id: stable outputs


def test_table_prints_text_outside_a_notebook(capsys):
    display.table(["a", "b"], [["x", "1"]], align=["<", "<"])
    assert capsys.readouterr().out == "a  b\n-  -\nx  1\n"


@pytest.mark.parametrize("header, rows, align, error, name", [
    ("ab", [], None, TypeError, "header"), ([], [], None, TypeError, "header"),
    (["a"], "rows", None, TypeError, "rows"), (["a", "b"], [["x"]], None, ValueError, r"rows\[0\]"),
    (["a"], [["x"]], ["^"], ValueError, "align"), (["a", "b"], [], ["<"], ValueError, "align"),
])
def test_table_bad_input(header, rows, align, error, name):
    with pytest.raises(error, match=name):
        display.Table(header, rows, align)


@pytest.mark.parametrize("args, error", [((), ValueError), ((42,), TypeError), ((len,), TypeError),
                                         (("quant.qrange",), TypeError), ((int,), ValueError)])
def test_show_source_bad_input(args, error):
    with pytest.raises(error, match="objects"):
        display.show_source(*args)


def test_markdown_text_must_be_a_str():
    with pytest.raises(TypeError, match="text"):
        display.Markdown(42)


@pytest.mark.parametrize("slug", [None, 2016, ["xnor_net"]])
def test_header_card_bad_slug(slug):
    with pytest.raises(TypeError, match="slug"):
        display.header_card(slug)
    with pytest.raises(KeyError, match="xnor_net"):
        display.header_card("xnor_nett")


def test_colab_url_format():
    url = display.colab_url("notebooks/2016/xnor_net.ipynb")
    match = re.fullmatch(r"https://colab\.research\.google\.com/github/([^/]+)/([^/]+)/blob/([^/]+)/(.+)", url)
    assert match, url
    owner, repo, branch, path = match.groups()
    assert f"https://github.com/{owner}/{repo}" == catalog.REPOSITORY_URL
    assert branch == catalog.REPOSITORY_BRANCH
    assert path == f"{catalog.COLAB_FOLDER}/notebooks/2016/xnor_net.ipynb"  # the copy with the stubs


@pytest.mark.parametrize("notebook", ["notebooks/2016/xnor_net.py", "", 3, None, "/home/me/xnor_net.ipynb",
                                      "notebooks/../../xnor_net.ipynb", "./notebooks/2016/xnor_net.ipynb",
                                      "notebooks//2016/xnor_net.ipynb", "notebooks\\2016\\xnor_net.ipynb"])
def test_colab_url_bad_input(notebook):
    with pytest.raises(ValueError, match="notebook"):
        display.colab_url(notebook)


# ------------------------------------------------------------------------------------------------- seed


def test_set_seed_makes_torch_repeatable():
    qteach.set_seed(123)
    first = torch.randn(5)
    qteach.set_seed(123)
    assert torch.equal(torch.randn(5), first)
    qteach.set_seed(124)
    assert not torch.equal(torch.randn(5), first)


def test_set_seed_seeds_numpy_and_random():
    qteach.set_seed(7)
    a = (np.random.rand(3).tolist(), random.random())
    qteach.set_seed(7)
    assert (np.random.rand(3).tolist(), random.random()) == a


def test_set_seed_returns_seeded_generator():
    generator = qteach.set_seed(5)
    assert torch.equal(torch.randn(4, generator=generator), torch.randn(4, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2 ** 32, ValueError), (1.5, TypeError), (True, TypeError)])
def test_set_seed_bad_input(seed, error):
    with pytest.raises(error, match="seed"):
        qteach.set_seed(seed)


@pytest.mark.parametrize("value, expected", [(3, 3.0), (2.5, 2.5), (torch.tensor(1.5), 1.5), (torch.tensor([4]), 4.0)])
def test_as_number_accepts_numbers_and_one_element_tensors(value, expected):
    assert checks.as_number(value, LABEL, "alpha") == expected


@pytest.mark.parametrize("value, hint", [(torch.ones(2), "single number"), ("1.0", "should be a number"),
                                         (True, "should be a number")])
def test_as_number_fails_with_a_hint(value, hint):
    with pytest.raises(AssertionError, match=f"^{LABEL}: alpha .*{hint}"):
        checks.as_number(value, LABEL, "alpha")


def test_wall_seconds_warms_up_then_times_each_repeat():
    calls = []
    seconds = hw.wall_seconds(lambda: calls.append(1), repeats=3)
    assert calls == [1] * 5 and 0 <= seconds < 0.1  # warm-up, one probe, three measurements
    calls.clear()
    hw.wall_seconds(lambda: calls.append(1), repeats=2, min_seconds=1e-3, best=True)
    assert 5 <= len(calls) <= 2 + 2 * 50  # fast calls are looped, at most 50 times a measurement


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(fn=42), TypeError, "fn"), (dict(repeats=0), ValueError, "repeats"),
    (dict(min_seconds=-1.0), ValueError, "min_seconds"), (dict(best="yes"), TypeError, "best"),
])
def test_wall_seconds_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        hw.wall_seconds(**{"fn": lambda: None, **kwargs})


def test_explore_updates_on_every_change():
    import ipywidgets as widgets

    calls = []
    bits = widgets.IntSlider(value=2, min=1, max=8)
    panel = viz.explore(lambda bits: calls.append(bits) or f"{bits} bits", bits=bits)
    bits.value = 5
    assert calls == [2, 5]  # once when created, once per change
    assert panel.children[-1].outputs[-1]["data"]["text/plain"] == "5 bits"


def test_explore_with_button_runs_only_when_pressed():
    import ipywidgets as widgets

    calls = []
    bits = widgets.IntSlider(value=2, min=1, max=8)
    panel = viz.explore(lambda bits: calls.append(bits) or "trained", button="Train", bits=bits)
    bits.value = 5
    assert calls == []  # neither on creation nor on change: updates are slow
    run = panel.children[-2]
    assert run.description == "Train"
    run.click()
    assert calls == [5]
    assert panel.children[-1].outputs[-1]["data"]["text/plain"] == "trained"


def test_explore_bad_input():
    import ipywidgets as widgets

    with pytest.raises(TypeError, match="update"):
        viz.explore(3, bits=widgets.IntSlider())
    with pytest.raises(TypeError, match="controls"):
        viz.explore(print)
    with pytest.raises(TypeError, match="controls"):
        viz.explore(print, bits="slider")
    with pytest.raises(TypeError, match="button"):
        viz.explore(print, button="  ", bits=widgets.IntSlider())
