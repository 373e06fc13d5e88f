"""The run's index page and offline HTML: a headline from results.csv, thumbnails, no network, no absolute path."""
from __future__ import annotations

import re

import nbformat
import pandas as pd
import yaml

import zslkit.builtins  # noqa: F401  (registers the heads the headline separates)
from zslkit.show.report_page import WIDGET_NOTE, headline, offline_html, offline_notebook, write_index


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
    assert glove["(B+C)-Y AUC-l"] == "0.610 [0.560, 0.660]" and glove["permutation p"] == "< 0.001"
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
    page, _ = HTMLExporter(exclude_input=True).from_notebook_node(nb)
    assert 'src="https://' in page and "widget-view" in page  # the stock export fetches scripts from CDNs
    clean, _ = HTMLExporter(exclude_input=True).from_notebook_node(offline_notebook(nb))
    clean = offline_html(clean)
    assert not re.search(r"<(script|link|img)[^>]*(src|href)=[\"']https?://", clean)
    assert "widgetRendererSrc" not in clean and "widget-view" not in clean and WIDGET_NOTE in clean


def test_index_has_headline_thumbnails_and_only_relative_links(tmp_path):
    folder = tmp_path / "run"
    (folder / "figures").mkdir(parents=True)
    (folder / "html").mkdir()
    (folder / "figures" / "05_auc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "html" / "05_evaluate.html").write_text("<html></html>")
    (folder / "figures" / "04_maps.html").write_text("<html></html>")
    _results().to_csv(folder / "results.csv", index=False)
    (folder / "params.yaml").write_text(yaml.safe_dump({"data": {"name": "m21-demo", "source": "m21"},
                                                        "model": {"sideinfo": "glove"}, "train": {"also": ["table"]}}))
    page = write_index(folder).read_text()
    assert '<img src="figures/05_auc.png"' in page and 'href="html/05_evaluate.html"' in page
    assert '<a href="figures/04_maps.html">04_maps</a> (interactive' in page
    assert "0.610 [0.560, 0.660]" in page and "glove, table" in page
    assert str(tmp_path) not in page and "http" not in page


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
