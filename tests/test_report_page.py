"""The run's index page and offline HTML: a verdict in words and a headline from results.csv, best first, terms
linked to the glossary, captioned thumbnails by stage, titled pages, no network, no absolute path."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

import zslkit.builtins  # noqa: F401  (registers the heads the headline separates)
from zslkit.show import report_page
from zslkit.show.report_page import (
    GLOSSARY,
    WIDGET_NOTE,
    augment_note,
    figure_caption,
    headline,
    offline_html,
    offline_notebook,
    page_title,
    verdict,
    write_index,
)
from zslkit.show.style import model_colour

ROOT = Path(__file__).resolve().parents[1]


def _results() -> pd.DataFrame:
    rows = []
    for model, auc in (("embedding glove", 0.61), ("embedding glove ridge", 0.66), ("embedding random", 0.52),
                       ("embedding random@1", 0.48)):
        rows += [{"stage": "05_evaluate", "model": model, "test_setting": "(B+C)-Y", "task": "retrieval",
                  "labels": "annotation", "metric": "AUC-l", "value": auc, "ci_low": auc - 0.05, "ci_high": auc + 0.05},
                 {"stage": "05_evaluate", "model": model, "test_setting": "(B+C)-Y", "task": "permutation test",
                  "labels": "annotation", "metric": "permutation p-value (H1: own > permuted)", "value": 0.0004}]
    for stat, v in (("mean", 0.50), ("min", 0.48), ("max", 0.52)):
        rows.append({"stage": "05_evaluate", "model": "embedding random, 2 draws", "test_setting": "(B+C)-Y",
                     "task": "retrieval over draws", "labels": "annotation", "metric": f"AUC-l {stat}", "value": v})
    rows.append({"stage": "05_evaluate", "model": "classifier", "test_setting": "B-X", "task": "seen-label",
                 "labels": "annotation", "metric": "AUC-l", "value": 0.8, "ci_low": 0.75, "ci_high": 0.85})
    return pd.DataFrame(rows)


def test_headline_keeps_the_main_models_and_formats_intervals():
    head = headline(_results())
    assert head.model.tolist() == ["embedding glove", "embedding random, 2 draws", "classifier"]
    glove = head.iloc[0]
    assert glove["(B+C)-Y AUC-l"] == "0.610 [0.560, 0.660]" and glove["permutation p"] == "4.0e-4"
    assert head.iloc[1]["(B+C)-Y AUC-l"] == "0.500 (draws 0.480–0.520)"
    assert head.iloc[2]["B-X AUC-l"] == "0.800 [0.750, 0.850]"
    assert headline(_results(), heads=True).model.tolist() == ["embedding glove ridge"]


def test_offline_html_drops_network_scripts_and_notes_widgets():
    from nbconvert import HTMLExporter
    nb = nbformat.v4.new_notebook()
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
            "text/plain": "Tab(...)"}
    nb.cells = [nbformat.v4.new_markdown_cell("$x^2$"),
                nbformat.v4.new_code_cell("w", outputs=[nbformat.v4.new_output("display_data", data=view)])]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                           "version_minor": 0}}
    nb.cells[1].outputs = [copy.deepcopy(o) for o in nb.cells[1].outputs * 3]  # three widgets (tqdm bars): one note
    page, _ = HTMLExporter(exclude_input=True).from_notebook_node(nb)
    assert 'src="https://' in page and "widget-view" in page  # the stock export fetches scripts from CDNs
    assert "<title>Notebook</title>" in page
    clean, _ = HTMLExporter(exclude_input=True).from_notebook_node(offline_notebook(nb, page_title("demo", "03_train")))
    clean = offline_html(clean)
    assert not re.search(r"<(script|link|img)[^>]*(src|href)=[\"']https?://", clean)
    assert "widgetRendererSrc" not in clean and "widget-view" not in clean and clean.count(WIDGET_NOTE) == 1
    assert "above" not in WIDGET_NOTE  # the note no longer claims figures above it
    assert "<title>zslkit · demo · 03 train</title>" in clean
    # wide tables scroll inside their output; a cell (an interval) never wraps
    assert 'id="zslkit-report-css"' in clean and "white-space: nowrap" in clean and "overflow-x: auto" in clean


def test_index_has_headline_thumbnails_and_only_relative_links(tmp_path):
    folder = tmp_path / "run"
    (folder / "figures").mkdir(parents=True)
    (folder / "html").mkdir()
    (folder / "figures" / "05_auc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "html" / "05_evaluate.html").write_text("<html></html>")
    (folder / "figures" / "04_maps.html").write_text("<html></html>")
    _results().to_csv(folder / "results.csv", index=False)
    (folder / "params.yaml").write_text(yaml.safe_dump({"data": {"name": "m21-demo", "source": "m21"},
                                                        "model": {"sideinfo": "glove"}, "train": {
                                                            "also": ["table"],
                                                            "augment": [{"name": "specaugment", "time_width": 40}]}}))
    page = write_index(folder).read_text()
    assert "specaugment (time_width 40)" in page  # how the models were trained, beside the model
    assert '<img src="figures/05_auc.png"' in page and 'href="html/05_evaluate.html"' in page
    assert '<a href="figures/04_maps.html">04_maps.html</a>' in page and "(interactive, works offline)" in page
    assert "0.610 [0.560, 0.660]" in page and "glove, table" in page
    assert str(tmp_path) not in page and "http" not in page
    assert "<title>zslkit · run</title>" in page
    # the verdict first, then the rest; figures grouped by stage with captions
    assert page.index("<h2>Verdict</h2>") < page.index("<h2>Headline</h2>") < page.index("<h2>Figures</h2>")
    assert "<h3>04 · Embeddings and maps</h3>" in page and "<h3>05 · Evaluate</h3>" in page
    assert "<figcaption>05 auc</figcaption>" in page
    # every term links to its entry in the page's glossary; every model has its colour
    for anchor, _, _ in GLOSSARY:
        assert f"id='{anchor}'" in page
    for anchor in ("auc-l", "b-x", "bc-y", "random-control", "permutation-p"):  # the terms of this small table
        assert f'href="#{anchor}"' in page, anchor
    assert f"background:{model_colour('embedding glove')}" in page


def test_index_says_what_was_adapted_to_small_data(tmp_path):
    """Side information not built, the models left out with it, batches fitted, maps recoloured and a permutation
    test that cannot reject: each said once under 'Adapted to the data'; a run with none has no such section."""
    from zslkit.show.report_page import adaptations
    folder = tmp_path / "run"
    folder.mkdir()
    extra = pd.DataFrame([
        {"stage": "02_splits", "task": "sideinfo table", "metric": "skipped", "test_setting": "no knowledge.csv"},
        {"stage": "03_train", "model": "embedding table", "task": "training", "metric": "skipped",
         "test_setting": "side information 'table' was not built: no knowledge.csv"},
        {"stage": "03_train", "model": "embedding glove", "task": "training", "metric": "batch_size", "value": 11},
        {"stage": "03_train", "model": "classifier", "task": "training", "metric": "batch_size", "value": 11},
        {"stage": "04_embeddings", "model": "embedding glove", "task": "maps", "metric": "color_group",
         "test_setting": "embed.color_group 'family' is not a tag group of this dataset"},
        *({"stage": "05_evaluate", "model": m, "test_setting": "(B+C)-Y", "task": "permutation test",
           "metric": "smallest attainable p-value", "value": 0.5, "n": 2} for m in ("embedding glove", "x"))])
    results = pd.concat([_results(), extra], ignore_index=True)
    notes = adaptations(results, {"train": {"batch_size": 64}})
    assert notes == ["side information 'table' not built: no knowledge.csv",
                     "model 'embedding table' not trained: side information 'table' was not built: no knowledge.csv",
                     "embed.color_group 'family' is not a tag group of this dataset",
                     "train.batch_size 64 is more than the training tracks: batches of 11 "
                     "(embedding glove, classifier)",
                     "permutation test on (B+C)-Y: with 2 unseen tags the smallest p it can give is 0.5, so it cannot "
                     "reject at 5 %"]
    results.to_csv(folder / "results.csv", index=False)
    (folder / "params.yaml").write_text(yaml.safe_dump({"train": {"batch_size": 64}}))
    page = write_index(folder).read_text()
    assert "<h2>Adapted to the data</h2>" in page and "batches of 11 (embedding glove, classifier)" in page
    assert adaptations(_results(), {"train": {"batch_size": 64}}) == []
    _results().to_csv(folder / "results.csv", index=False)
    assert "Adapted to the data" not in write_index(folder).read_text()


def _two_kinds(glove_p: float = 0.02, glove_low: float = 0.50) -> pd.DataFrame:
    """A table model that transfers, a GloVe model that transfers weakly, a random control over two draws."""
    rows = []

    def add(model, setting, task, metric, value, lo=None, hi=None, n=17):
        rows.append({"stage": "05_evaluate", "model": model, "test_setting": setting, "task": task,
                     "labels": "annotation", "metric": metric, "value": value, "ci_low": lo, "ci_high": hi, "n": n})

    for model, l_value, lo, hi, i_value, p in (("embedding glove", 0.57, glove_low, 0.64, 0.51, glove_p),
                                               ("embedding table", 0.74, 0.68, 0.79, 0.68, 9.999e-05),
                                               ("embedding table ridge", 0.77, 0.72, 0.82, 0.73, 9.999e-05),
                                               ("embedding random", 0.519, 0.46, 0.58, 0.547, 0.25),
                                               ("embedding random@1", 0.533, 0.47, 0.59, 0.551, 0.18)):
        add(model, "(B+C)-Y", "retrieval", "AUC-l", l_value, lo, hi)
        add(model, "(B+C)-Y", "annotation", "AUC-i", i_value, i_value - 0.01, i_value + 0.01, n=2000)
        add(model, "(B+C)-Y", "permutation test", "permutation p-value (H1: own > permuted)", p)
    for stat, v in (("mean", 0.526), ("min", 0.519), ("max", 0.533)):
        add("embedding random, 2 draws", "(B+C)-Y", "retrieval over draws", f"AUC-l {stat}", v, n=2)
    return pd.DataFrame(rows)


def test_the_verdict_says_what_transfers_against_the_random_controls_draws():
    said = verdict(_two_kinds(), {"train": {"controls": ["random"]}})
    assert len(said) == 3
    table, glove, best = said
    assert table.startswith("Side information table (the knowledge table, model 'embedding table') transfers to")
    assert "0.740 [0.680, 0.790], its interval above the random control (0.519–0.533 over 2 draws)" in table
    assert "permutation p = 1.0e-4" in table and "AUC-i 0.680, above the control's 0.547–0.551" in table
    assert glove.startswith("Side information glove (GloVe word vectors, model 'embedding glove') transfers weakly")
    assert "but its interval reaches down to it" in glove and "permutation p = 0.020" in glove
    assert "AUC-i 0.510, below the control's 0.547–0.551" in glove
    assert best == ("Best model on the unseen tags: embedding table ridge, (B+C)-Y AUC-l 0.770 [0.720, 0.820] "
                    "(head ridge).")
    # no permutation evidence and an interval among the draws: no transfer, though the mean is above them
    none = verdict(_two_kinds(glove_p=0.3), {})[1]
    assert " does not transfer to the unseen tags" in none and "ranks its tracks no better than" in none
    # an interval clear of every draw without the permutation test's support: weakly
    assert " transfers weakly" in verdict(_two_kinds(glove_p=0.3, glove_low=0.54), {})[1]
    assert verdict(_two_kinds().assign(stage="03_train"), {}) == []
    undefined = _two_kinds()
    undefined.loc[(undefined.model == "embedding glove") & (undefined.metric == "AUC-l"), "value"] = float("nan")
    assert not any("glove" in v for v in verdict(undefined, {}))  # no AUC-l to judge (too few positives)


def test_the_verdict_without_a_control_compares_with_chance():
    results = _two_kinds()
    results = results[~results.model.str.startswith("embedding random")]
    said = verdict(results, {"train": {"controls": []}})
    assert "chance (0.5; this run has no control)" in said[0] and "Annotation: AUC-i 0.680." in said[0]


def test_the_headline_puts_the_best_model_first():
    head = headline(_two_kinds())
    assert head.model.tolist() == ["embedding table", "embedding glove", "embedding random, 2 draws"]


def test_every_glossary_anchor_is_in_docs_evaluation():
    docs = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    assert "## Glossary" in docs
    for anchor, term, _ in GLOSSARY:
        assert f'<a id="{anchor}"></a>' in docs, anchor


@pytest.mark.parametrize("stem, caption", [
    ("02_similarity_glove", "Tag-to-tag cosine similarity of the glove side information (unseen tags red, *)"),
    ("05_per_tag_auc_embedding_random@1_conse", "Per-tag AUC-l on B+C by group, embedding random@1 conse"),
    ("06_AUC-l_BpC-XpY", "AUC-l on (B+C)-(X+Y) across the compared runs (mean, sd over seeds and over splits)"),
    ("06_AUC-i_ApBpC-Y", "AUC-i on (A+B+C)-Y across the compared runs (mean, sd over seeds and over splits)"),
    ("07_something_new", "07 something new")])
def test_figure_captions_come_from_the_file_names(stem, caption):
    assert figure_caption(stem) == caption


@pytest.mark.parametrize("augment, note", [
    ([], "none"), (None, "none"), (["gain"], "gain"),
    ([{"name": "specaugment", "time_masks": 2, "time_width": 40}, {"name": "mixup", "p": 0.5}],
     "specaugment (time_masks 2, time_width 40), mixup (p 0.5)")])
def test_the_augmentation_is_said_with_its_parameters(augment, note):
    assert augment_note(augment) == note


def test_page_titles():
    assert page_title("demo", "05_evaluate") == "zslkit · demo · 05 evaluate"
    assert page_title("demo", "") == "zslkit · demo"
    assert report_page.linked("(B+C)-Y AUC-l") == ('<a class="term" href="#bc-y">(B+C)-Y</a> '
                                                   '<a class="term" href="#auc-l">AUC-l</a>')


def test_index_shows_a_backbones_leakage(tmp_path):
    """The own-corpus warning, the leaky unseen tags and the unseen-tag headline on all and non-leaky tags appear on
    the page for a frozen-backbone run; a run without leakage rows has no such section."""
    folder = tmp_path / "run"
    folder.mkdir()
    bb = "musicnn-MTT_musicnn-bn_dense"
    extra = [{"stage": "01_preprocess", "model": bb, "task": "leakage", "metric": "warning", "value": 1,
              "test_setting": "the dataset mtat is the corpus musicnn MTT was trained on"},
             *({"stage": "02_splits", "model": bb, "task": "leakage", "metric": "leaky unseen tag", "value": 1,
                "test_setting": t, "labels": t} for t in ("violin", "choir")),
             {"stage": "05_evaluate", "model": "embedding glove", "test_setting": "Y", "task": "leakage",
              "labels": bb, "metric": "n_leaky_unseen_tags", "value": 2}]
    for setting, auc_l, auc_i in (("(B+C)-Y", None, 0.58), ("(B+C)-Y non-leaky", 0.57, 0.55)):  # _results: 0.61
        extra += [{"stage": "05_evaluate", "model": "embedding glove", "test_setting": setting, "task": task,
                   "labels": "annotation", "metric": metric, "value": v}
                  for task, metric, v in (("retrieval", "AUC-l", auc_l), ("annotation", "AUC-i", auc_i))
                  if v is not None]
    results = pd.concat([_results(), pd.DataFrame(extra)], ignore_index=True)
    results.to_csv(folder / "results.csv", index=False)
    page = write_index(folder).read_text()
    section = page[page.index("<h3>Leakage</h3>"):]
    assert "the dataset mtat is the corpus musicnn MTT was trained on" in section
    assert "violin, choir" in section
    cells = re.findall(r"<td>(?:<span[^>]*></span>)?([^<]*)</td>", section[:section.index("</table>")])
    assert cells == ["embedding glove", "2", "0.610", "0.570", "0.580", "0.550"]
    _results().to_csv(folder / "results.csv", index=False)
    assert "Leakage" not in write_index(folder).read_text()


def test_the_supervised_source_peer_is_never_the_headlines_best_nor_the_verdicts():
    peer = "supervised-source conse glove (MTT_musicnn)"
    results = pd.concat([_two_kinds(), pd.DataFrame([
        {"stage": "05_evaluate", "model": peer, "test_setting": "(B+C)-Y", "task": "retrieval", "labels": "annotation",
         "metric": "AUC-l", "value": 0.95, "ci_low": 0.9, "ci_high": 0.99, "n": 17}])], ignore_index=True)
    head = headline(results)
    assert head.model.tolist()[0] == "embedding table" and head.model.tolist()[-1] == peer
    said = verdict(results, {"train": {"controls": ["random"]}})
    assert not any(peer in s for s in said)


def test_a_transfer_runs_brief_names_the_source_and_the_models_not_training_defaults():
    from zslkit.show.report_page import params_brief
    P = {"data": {"name": "realmusic", "source": "realmusic"}, "split": {"name": "s0"},
         "model": {"encoder": "paper"}, "train": {"setting": "A"},
         "transfer": {"source": "/somewhere/reports/demo", "models": ["joint", "joint-random"],
                      "adapt": ["none", "adabn"]}}
    brief = dict(params_brief(P))
    assert brief == {"target dataset": "realmusic (source realmusic)", "source run": "demo",
                     "models applied": "joint, joint-random; each also with adabn"}
    P["transfer"]["source"] = None          # a training run: its split and model
    assert "model" in dict(params_brief(P)) and "source run" not in dict(params_brief(P))
