"""One colour per model on every page, readable p-values, and tables shown whole and grouped."""
from __future__ import annotations

import itertools
import subprocess
import sys

import pandas as pd
import pytest
from IPython.display import HTML

from zslkit.show import style, tables

DEMO_MODELS = [f"embedding {kind}{head}" for kind in ("glove", "table", "sentence", "attributes", "random", "random@1")
               for head in ("", " conse", " ridge", " eszsl")] + ["classifier"]


def _lab(colour: str) -> tuple[float, float, float]:
    """CIE L*a*b* of an sRGB hex colour (D65)."""
    def lin(c):
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92
    r, g, b = (lin(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    x, y, z = ((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b,
               (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883)
    f = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_every_model_of_a_run_has_its_own_colour_far_from_the_others():
    colours = style.model_colours(DEMO_MODELS)
    assert len(set(colours.values())) == len(DEMO_MODELS)
    closest = min(sum((a - b) ** 2 for a, b in zip(_lab(colours[m]), _lab(colours[n]))) ** 0.5
                  for m, n in itertools.combinations(DEMO_MODELS, 2))
    assert closest > 15, closest  # CIE76 distance: clearly different to the eye


def test_a_models_colour_depends_on_its_label_alone():
    assert style.model_colour("embedding glove") == style.model_colour("embedding glove")
    assert style.model_colours(reversed(DEMO_MODELS)) == style.model_colours(DEMO_MODELS)
    # a control's summary over draws is drawn as its first draw; a sweep's series by its model
    assert style.model_colour("embedding random, 2 draws") == style.model_colour("embedding random")
    assert style.model_colour("embedding random conse, 3 draws") == style.model_colour("embedding random conse")
    assert style.model_colour("embedding glove · jamendo") == style.model_colour("embedding glove")
    assert style.model_colour("embedding random@1") != style.model_colour("embedding random")
    assert style.model_colour("embedding glove") == "#0f55bd"  # pinned: a change shows on every page


def test_colours_are_the_same_in_another_process():
    names = ["embedding myvectors", "embedding myvectors ridge", "something else"]
    code = f"from zslkit.show import style; print([style.model_colour(n) for n in {names!r}])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == str([style.model_colour(n) for n in names])
    assert all(c.startswith("#") and len(c) == 7 for c in eval(other))


def test_heads_have_their_own_hatch():
    hatches = {style.model_hatch(f"embedding glove{h}") for h in ("", " conse", " ridge", " eszsl")}
    assert len(hatches) == 4 and style.model_hatch("embedding glove") == ""


@pytest.mark.parametrize("p, text", [(0.5, "0.500"), (0.0177, "0.018"), (0.001, "0.001"), (9.999e-05, "1.0e-4"),
                                     (0.0004, "4.0e-4"), (1.2e-12, "1.2e-12"), (float("nan"), ""), (None, "")])
def test_p_values_read_at_once(p, text):
    assert style.format_p(p) == text


@pytest.mark.parametrize("model, side", [("embedding glove", "glove"), ("embedding table ridge", "table"),
                                         ("embedding random@1 conse", "random"),
                                         ("embedding random, 2 draws", "random"), ("classifier", "classifier")])
def test_side_of_a_model_label(model, side):
    assert style.side_of(model) == side


def _paper_rows(n_models: int = 8) -> pd.DataFrame:
    rows = []
    for i, model in enumerate(DEMO_MODELS[:n_models]):
        for test in ("B-Y", "C-Y", "(B+C)-Y", "B-(X+Y)", "C-(X+Y)", "(B+C)-(X+Y)"):
            for metric in ("AUC-i", "MAP-i"):
                rows.append({"stage": "05_evaluate", "model": model, "train_setting": "A-X", "test_setting": test,
                             "task": "annotation", "labels": "annotation", "metric": metric, "value": 0.5 + i / 100,
                             "ci_low": 0.45, "ci_high": 0.55})
    return pd.DataFrame(rows)


def test_no_table_is_cut_with_an_ellipsis(monkeypatch):
    shown = []
    monkeypatch.setattr(tables, "display", shown.append)
    with pd.option_context("display.max_rows", 10):
        tables.notebook_display()  # sets the options the notebooks run with
        long = pd.DataFrame({"model": [f"m{i}" for i in range(300)], **{f"c{j}": range(300) for j in range(40)}})
        page = long._repr_html_()
        assert "..." not in page and "…" not in page and "m299" in page and "c39" in page
        table = tables.paper_table(_paper_rows(), "annotation")
        assert len(table) == 48
        tables.show_by_side(table)
    assert [type(s) for s in shown] == [HTML, HTML]  # glove and table, one table each
    html = "".join(s.data for s in shown)
    assert "..." not in html and "side information: glove" in html and "side information: table" in html
    assert html.count("<tr>") == 48  # every body row (a header row has a style attribute)
    assert "0.5000 [0.450, 0.550]" in html and all(m in html for m in DEMO_MODELS[:8])


def test_grouped_tables_fold_and_name_their_rows(monkeypatch):
    shown = []
    monkeypatch.setattr(tables, "display", shown.append)
    tables.show_grouped(tables.readable(_paper_rows(2)), by="model", folded=True)
    assert len(shown) == 2 and all(s.data.startswith("<details") for s in shown)
    assert "embedding glove <small>(12 rows)</small>" in shown[0].data and "swatch" in shown[0].data


def test_readable_and_transfer_tests_write_p_values_plainly():
    rows = pd.DataFrame([
        {"model": "embedding table", "test_setting": "(B+C)-Y", "task": "permutation test", "labels": "annotation",
         "metric": m, "value": v, "n": 17} for m, v in (("mean AUC-l (own side information)", 0.7371),
                                                       ("mean AUC-l (permuted side information)", 0.4967),
                                                       ("permutation p-value (H1: own > permuted)", 9.999e-05))]
        + [{"model": "embedding random", "test_setting": "(B+C)-Y", "task": "chance test", "labels": "annotation",
            "metric": "t-test p-value (H0: AUC-l = 0.5)", "value": 0.566, "n": 17}])
    t = tables.transfer_tests(rows)
    assert t.columns.tolist() == ["model", "test", "unseen tags", "AUC-l own", "AUC-l permuted", "permutation p",
                                  "chance t-test p"]
    assert t.iloc[0]["permutation p"] == "1.0e-4" and t.iloc[1]["chance t-test p"] == "0.566"
    r = tables.readable(rows)
    assert r.value.tolist() == ["0.7371", "0.4967", "1.0e-4", "0.566"] and r.n.tolist() == ["17"] * 4


def test_rounded_keeps_small_p_values_readable():
    wide = pd.DataFrame({"AUC-l": [0.73714], "permutation p-value (H1: own > permuted)": [9.999e-05]})
    out = tables.rounded(wide)
    assert out.iloc[0].tolist() == [0.737, "1.0e-4"]
