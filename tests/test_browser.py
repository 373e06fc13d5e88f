"""JupyterLab and the HTML reports in a real browser: Debian's Chromium driven by Playwright.

Run with ``make test-browser`` (it installs Playwright and, when missing, apt's chromium); left out
of ``make test``. A copy of the project (notebooks, params, the lab's config) gets a smoke run by the
runner; JupyterLab is started on it on a free port; notebook 04 is opened and run with Run All, as a
user would, without edits; the explorer and the interactive maps are driven; the stored notebook
must still be clean after a save. Then ``index.html`` and every notebook's HTML of the run are
opened from disk, and no page may make a network request. Screenshots go to
``reports/browser-test/`` (or ``$ZSLKIT_SHOTS``) for a person to look at.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
import yaml
from conftest import ROOT

from zslkit.evaluate.embeddings import Embeddings
from zslkit.run import runner

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("ZSLKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("ZSLKIT_SHOTS") or ROOT / "reports" / "browser-test")

# the pixel position of point ``i`` of the ``renderer``-th glyph renderer of the ``plot``-th plot of the
# first bokeh document on the page (bokeh's own views know their scales)
POINT_JS = """([plot, renderer, i]) => {
  const views = [];
  (function walk(v) { if (!v) return; if (v.frame && v.renderer_views) views.push(v);
     for (const c of (v.child_views || [])) walk(c); })(Object.values(window.Bokeh.index)[0]);
  const pv = views[plot];
  const rv = [...pv.renderer_views.values()].filter(r => r.model.data_source)[renderer];
  const d = rv.model.data_source.data, xf = rv.model.glyph.x.field, yf = rv.model.glyph.y.field;
  const r = pv.canvas_view.el.getBoundingClientRect();
  return [r.left + pv.frame.x_scale.compute(d[xf][i]), r.top + pv.frame.y_scale.compute(d[yf][i])];
}"""


# bokeh draws into shadow roots: the text of an element and of every shadow root below it
SHADOW_TEXT = """el => { let t = ''; (function walk(n) { if (n.shadowRoot) walk(n.shadowRoot);
  for (const c of n.childNodes) { if (c.nodeType === 3) t += c.textContent; else walk(c); } })(el); return t; }"""


def _wait_until(condition, seconds: float) -> None:
    """Poll ``condition`` (for what ``wait_for_function`` cannot reach, e.g. inside shadow roots)."""
    end = time.time() + seconds
    while not condition():
        if time.time() > end:
            raise TimeoutError(f"not true within {seconds} s")
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project whose params/demo.yaml is the smoke run (with the explorer on), run once."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no chromium at {CHROMIUM}: `make test-browser` installs it (apt-get install chromium), "
                    "or set ZSLKIT_CHROMIUM")
    root = tmp_path_factory.mktemp("project")
    for name in ("notebooks", "params"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "jupyter_server_config.py", root)
    params = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    params["embed"]["widget"] = True
    (root / "params" / "demo.yaml").write_text(yaml.safe_dump(params))
    before, os.environ["ZSLKIT_ROOT"] = os.environ.get("ZSLKIT_ROOT"), str(root)  # conftest points it at the repo
    try:
        runner.run(root / "params" / "demo.yaml", root=root, log=lambda *_: None)
    finally:
        os.environ["ZSLKIT_ROOT"] = before or ""
        if before is None:
            del os.environ["ZSLKIT_ROOT"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="module")
def lab(project):
    port, token = _free_port(), "zslkit-browser-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", f"--config={project / 'jupyter_server_config.py'}",
         f"--ServerApp.root_dir={project}", f"--ServerApp.port={port}", "--ServerApp.open_browser=False",
         f"--IdentityProvider.token={token}", "--allow-root"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "ZSLKIT_ROOT"})  # the lab finds its root as a user's does
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if requests.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 2 minutes")
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # installed by `make test-browser`, not by `make test`

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
        yield b
        b.close()


def _requests(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    return seen


def _errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_notebook_04_runs_in_the_lab_and_its_explorer_and_maps_work(project, lab, browser):
    base, token = lab
    stored_before = (project / "notebooks" / "04_embeddings.ipynb").read_text()
    track = Embeddings.load(project / "reports" / "smoke" / "embeddings" / "joint.npz").track_ids[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    urls, errors = _requests(page), _errors(page)
    try:
        _drive_notebook_04(page, base, token, track)
    except Exception:
        page.screenshot(path=SHOTS / "lab_04_failure.png")
        raise
    assert not errors, errors

    # saved from the lab, the stored notebook stays without outputs and unchanged
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Control+s")
    page.wait_for_timeout(3000)
    stored = json.loads((project / "notebooks" / "04_embeddings.ipynb").read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in stored["cells"] if c["cell_type"] == "code")
    assert "widgets" not in stored["metadata"]
    assert [c["source"] for c in stored["cells"]] == [c["source"] for c in json.loads(stored_before)["cells"]]
    # the papermill run was only read; everything came from this machine
    assert (project / "reports" / "smoke-lab" / "figures" / "04_maps.html").is_file()
    remote = {urlparse(u).hostname for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert remote <= {"127.0.0.1", "localhost"}, remote


def _drive_notebook_04(page, base, token, track):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{base}/lab/tree/notebooks/04_embeddings.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # the kernel is connected when the status bar says so; Run All, from the menu, as a user would
    page.get_by_text(re.compile(r"ipykernel\) \| Idle")).first.wait_for(timeout=120_000)
    for _ in range(3):  # a Run All given while the fresh kernel is still connecting can be dropped
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]")).first.wait_for(timeout=30_000)
            break
        except PlaywrightTimeout:
            continue
    page.wait_for_selector(".widget-tab", timeout=420_000)  # the explorer: the last cell's output
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0
    assert page.get_by_text("lab run: writing to reports/smoke-lab").count() == 1

    # the interactive maps rendered, a tag hovers, a tap selects it in both maps, a track tapped plays
    maps = page.locator(".zslkit-map").first
    maps.scroll_into_view_if_needed()
    page.wait_for_function("() => window.Bokeh && Object.keys(window.Bokeh.index).length > 0", timeout=60_000)
    assert maps.locator("canvas").count() >= 3
    x, y = page.evaluate(POINT_JS, [0, 0, 0])
    page.mouse.move(x, y)
    page.wait_for_selector(".bk-Tooltip", state="attached", timeout=10_000)
    assert "nearest seen" in page.locator(".bk-Tooltip").first.evaluate(SHADOW_TEXT)
    page.mouse.click(x, y)
    page.wait_for_function(f"() => ({SHADOW_TEXT})(document.querySelector('.zslkit-map'))"
                           ".includes('nearest seen tags before training')", timeout=10_000)
    page.screenshot(path=SHOTS / "lab_04_tag_maps.png")
    x, y = page.evaluate(POINT_JS, [2, 0, 0])
    page.mouse.click(x, y)
    page.wait_for_selector("audio.zslkit-audio", state="attached", timeout=10_000)
    src = page.locator("audio.zslkit-audio").first.get_attribute("src")
    assert "/files/data/m21-smoke/" in src
    assert page.evaluate("u => fetch(u, {method: 'HEAD'}).then(r => r.status)", src) == 200, src
    _wait_until(lambda: page.locator("audio.zslkit-audio").first.evaluate("a => a.readyState") >= 1, 20)
    page.screenshot(path=SHOTS / "lab_04_joint_map.png")

    # the explorer: pick a tag, type a query and press Enter, pick a track
    tabs = page.locator(".widget-tab").first
    tabs.scroll_into_view_if_needed()
    options = tabs.locator("select").first.locator("option")
    tabs.locator("table").first.wait_for(timeout=30_000)  # the first tag's answer, shown on creation
    before = tabs.locator("table").first.inner_text()
    tabs.locator("select").first.select_option(index=min(2, options.count() - 1))
    # the answer for the picked tag: its neighbours and top tracks, with audio players that load
    _wait_until(lambda: tabs.locator("table").count() >= 2 and tabs.locator("table").first.inner_text() != before
                and page.evaluate("() => [...document.querySelectorAll('.widget-tab audio')]"
                                  ".some(a => a.readyState >= 1)"), 30)
    tabs.locator(".lm-TabBar-tab", has_text=re.compile(r"^text →")).click()
    box = tabs.get_by_placeholder("any word or phrase", exact=False)
    box.fill("fast violin music")
    box.press("Enter")
    page.wait_for_function("() => [...document.querySelectorAll('.widget-tab table')].some(t => t.offsetParent "
                           "&& t.textContent.includes('score'))", timeout=30_000)
    tabs.locator(".lm-TabBar-tab", has_text=re.compile(r"^track →")).click()
    pick = tabs.get_by_placeholder("track id")
    pick.fill(track)
    pick.press("Enter")
    page.wait_for_function("() => [...document.querySelectorAll('.widget-tab .jp-OutputArea-output')].some(o => "
                           "o.offsetParent && o.textContent.includes('annotation'))", timeout=30_000)
    page.screenshot(path=SHOTS / "lab_04_explorer.png")


def test_report_pages_render_offline(project, browser):
    folder = project / "reports" / "smoke"
    pages = [folder / "index.html"] + sorted((folder / "html").glob("*.html")) + [folder / "figures" / "04_maps.html"]
    assert len(pages) == 8
    for path in pages:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        urls, errors = _requests(page), _errors(page)
        page.goto(path.as_uri())
        page.wait_for_timeout(1500)
        page.screenshot(path=SHOTS / f"report_{path.parent.name}_{path.stem}.png", full_page=True)
        remote = [u for u in urls if not u.startswith(("file:", "data:", "blob:"))]
        assert remote == [], (path.name, remote)
        assert not errors, (path.name, errors)
        if path.stem in ("04_embeddings", "04_maps"):
            assert page.locator(".zslkit-map canvas").count() >= 3, path.name
        if path.name == "index.html":
            assert page.locator("img").count() >= 5 and page.locator("table").count() >= 1
        page.close()
