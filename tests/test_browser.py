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

# The maps' views: bokeh's own views know their scales. ``root`` is the document on screen (a re-run cell's
# earlier documents are removed from Bokeh.index: zslkit.show.maps.html_fragment); ``plots`` its plot views:
# 0 the side-information map, 1 the learned tag map, 2 the joint map.
VIEWS_JS = """
const root = () => [...window.Bokeh.index.roots].find(v => v.el && v.el.isConnected
  && String(v.model.name || '').startsWith('zslkit'));
const plots = () => { const views = []; (function walk(v) { if (!v) return;
    if (v.frame && v.renderer_views) views.push(v); for (const c of (v.child_views || [])) walk(c); })(root());
  return views; };
const glyph = (plot, renderer) => [...plots()[plot].renderer_views.values()].filter(r => r.model.data_source)[renderer];
"""

# point ``i`` of the ``renderer``-th glyph renderer of plot ``plot``, scrolled into view: its pixel position
POINT_JS = """([plot, renderer, i]) => {""" + VIEWS_JS + """
  const pv = plots()[plot], rv = glyph(plot, renderer);
  const d = rv.model.data_source.data, xf = rv.model.glyph.x.field, yf = rv.model.glyph.y.field;
  const sx = () => pv.frame.x_scale.compute(d[xf][i]), sy = () => pv.frame.y_scale.compute(d[yf][i]);
  let r = pv.canvas_view.el.getBoundingClientRect();
  if (r.top + sy() < 40 || r.top + sy() > window.innerHeight - 40) {  // the page, or the lab's notebook panel
    pv.canvas_view.el.scrollIntoView({block: 'center'});
    r = pv.canvas_view.el.getBoundingClientRect();
  }
  return [r.left + sx(), r.top + sy()];
}"""

# true when the element under (x, y), followed down through shadow roots, is plot ``plot``'s canvas: what a
# mouse event there reaches (JupyterLab can lay a cell over it for a moment after a scroll, and
# content-visibility can keep it from being hit; a single mouse.move then never reaches bokeh)
UNDER_JS = """([plot, x, y]) => {""" + VIEWS_JS + """
  let el = document.elementFromPoint(x, y);
  while (el && el.shadowRoot) { const inner = el.shadowRoot.elementFromPoint(x, y); if (!inner || inner === el) break;
    el = inner; }
  const canvas = plots()[plot].canvas_view.el;
  return !!el && (canvas.contains(el) || (canvas.shadowRoot && canvas.shadowRoot.contains(el)));
}"""

# the tag maps' data: the row of an unseen tag whose nearest seen tags differ between the main model and a
# random control (both drawn), the control's name and both neighbour lists
PICK_JS = """() => {""" + VIEWS_JS + """
  const d = glyph(0, 0).model.data_source.data, models = Object.keys(d).filter(k => k.startsWith('nl_'))
    .map(k => k.slice(3));
  const control = models.find(m => m.startsWith('joint-random'));
  const ok = (m, i) => [d['sx_' + m][i], d['sy_' + m][i], d['lx_' + m][i], d['ly_' + m][i]]
    .every(v => v !== null && Number.isFinite(v));
  const i = d.tag.findIndex((t, i) => d.split[i].startsWith('unseen') && ok('joint', i) && ok(control, i)
    && d['nl_joint'][i] !== d['nl_' + control][i]);
  return {row: i, tag: d.tag[i], control: control, main: d['nl_joint'][i], other: d['nl_' + control][i],
          models: models};
}"""

# every root view in Bokeh.index (a document's layout and its notifications area): [name or type, on the page]
ROOTS_JS = "() => [...window.Bokeh.index.roots].map(v => [v.model.name || v.model.type, !!(v.el && v.el.isConnected)])"

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


def _info(page) -> str:
    """The text of the tag maps' info line (a bokeh Div, in shadow roots) in the document on screen."""
    return page.evaluate("() => {" + VIEWS_JS + """
      let found = null;
      (function walk(v) { if (!v || found) return; if (v.model.name === 'zslkit-map-info') { found = v; return; }
         for (const c of (v.child_views || [])) walk(c); })(root());
      return found ? (""" + SHADOW_TEXT + """)(found.el) : ''; }""")


def _hover(page, plot: int, renderer: int, i: int, want: str) -> str:
    """Move the mouse onto point ``i`` once the map's canvas is what lies under it; return the tooltip text
    once it contains ``want``."""
    page.mouse.move(2, 2)
    where: list[float] = []

    def under() -> bool:
        where[:] = page.evaluate(POINT_JS, [plot, renderer, i])
        return page.evaluate(UNDER_JS, [plot, *where])

    _wait_until(under, 30)
    x, y = where
    page.mouse.move(x - 6, y - 6)
    page.mouse.move(x, y, steps=4)
    texts: list[str] = []

    def shown() -> bool:
        texts[:] = page.locator(".bk-Tooltip").evaluate_all(f"els => els.map({SHADOW_TEXT})")
        return any(want in t for t in texts)

    _wait_until(shown, 15)
    return next(t for t in texts if want in t)


def _drive_maps(page, shots: str) -> dict:
    """Hover a tag, tap it (the info line names the model and its neighbours), switch to a random control
    (the info line and the tooltips follow it); return what was picked."""
    page.wait_for_function("() => window.Bokeh && [...window.Bokeh.index.roots].some(v => v.el && v.el.isConnected "
                           "&& String(v.model.name || '').startsWith('zslkit'))", timeout=60_000)
    _wait_until(lambda: page.evaluate(PICK_JS)["row"] >= 0, 30)
    pick = page.evaluate(PICK_JS)
    assert pick["control"] and len(pick["models"]) >= 3, pick
    row = pick["row"]
    assert pick["main"] in _hover(page, 0, 0, row, "nearest seen")
    x, y = page.evaluate(POINT_JS, [0, 0, row])
    page.mouse.click(x, y)
    _wait_until(lambda: "nearest seen tags before training" in _info(page), 15)
    info = _info(page)
    assert "model joint:" in info and pick["tag"] in info and pick["main"] in info, info
    page.screenshot(path=SHOTS / f"{shots}_tag_maps.png")
    # the comparison the README recommends: the same tag under the random control
    page.locator(".zslkit-map select").first.select_option(pick["control"])
    _wait_until(lambda: f"model {pick['control']}:" in _info(page), 15)
    info = _info(page)
    assert pick["other"] in info, info  # the control's neighbours, not the main model's
    assert pick["main"] in pick["other"] or pick["main"] not in info, info
    assert pick["other"] in _hover(page, 1, 0, row, pick["other"])
    page.screenshot(path=SHOTS / f"{shots}_tag_maps_control.png")
    return pick


def test_notebook_04_runs_in_the_lab_and_its_explorer_and_maps_work(project, lab, browser):
    base, token = lab
    path = project / "notebooks" / "04_embeddings.ipynb"
    stored_before = path.read_bytes()
    track = Embeddings.load(project / "reports" / "smoke" / "embeddings" / "joint.npz").track_ids[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    urls, errors = _requests(page), _errors(page)
    try:
        _drive_notebook_04(page, base, token, track)
        # saved from the lab with its outputs and the lab kernel's metadata, the stored file is the same bytes
        before = path.stat().st_mtime_ns
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Control+s")
        _wait_until(lambda: path.stat().st_mtime_ns != before, 30)
        page.wait_for_timeout(500)
    except Exception:
        page.screenshot(path=SHOTS / "lab_04_failure.png")
        raise
    assert not errors, errors
    assert path.read_bytes() == stored_before, "the save changed notebooks/04_embeddings.ipynb"
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
    assert page.get_by_text("official Jupyter news").count() == 0  # the lab asks nothing about news
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

    # the interactive maps: hover, tap, the model switch and its info line
    page.locator(".zslkit-map").first.scroll_into_view_if_needed()
    roots = page.evaluate(ROOTS_JS)
    assert [name for name, _ in roots].count("zslkit-04-maps") == 1 and all(on for _, on in roots), roots
    _drive_maps(page, "lab_04")
    # a track tapped in the joint map plays, from the Jupyter server
    x, y = page.evaluate(POINT_JS, [2, 0, 0])
    _wait_until(lambda: page.evaluate(UNDER_JS, [2, *page.evaluate(POINT_JS, [2, 0, 0])]), 30)
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

    # the maps cell run again: its new document replaces the old one in Bokeh.index, and the maps work
    old = page.locator(".zslkit-map").first.get_attribute("id")
    cell = page.locator(".jp-CodeCell", has=page.locator(".zslkit-map")).first
    cell.locator(".jp-InputArea-editor").first.click()
    page.keyboard.press("Control+Enter")
    _wait_until(lambda: page.locator(".zslkit-map").count() == 1
                and page.locator(".zslkit-map").first.get_attribute("id") != old
                and page.evaluate(ROOTS_JS) == roots, 180)  # the same documents, all on the page
    _drive_maps(page, "lab_04_rerun")


def test_report_pages_render_offline(project, browser):
    folder = project / "reports" / "smoke"
    pages = [folder / "index.html"] + sorted((folder / "html").glob("*.html")) + [folder / "figures" / "04_maps.html"]
    assert len(pages) == 8
    for path in pages:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        urls, errors = _requests(page), _errors(page)
        page.goto(path.as_uri())
        page.wait_for_timeout(1500)
        try:
            page.screenshot(path=SHOTS / f"report_{path.parent.name}_{path.stem}.png", full_page=True)
            remote = [u for u in urls if not u.startswith(("file:", "data:", "blob:"))]
            assert remote == [], (path.name, remote)
            assert not errors, (path.name, errors)
            # titled like every page of the run; no widget placeholder; no table cut with "..."
            stem = "" if path.name == "index.html" else path.stem
            assert page.title() == " · ".join(["zslkit", "smoke"] + ([stem.replace("_", " ")] if stem else []))
            assert page.get_by_text("An interactive widget was here").count() == 0, path.name
            assert page.get_by_text("Interactive in JupyterLab only").count() == 0, path.name
            assert not page.evaluate("() => [...document.querySelectorAll('td, th')]"
                                     ".some(c => ['...', '…'].includes(c.textContent.trim()))"), path.name
            if path.stem in ("04_embeddings", "04_maps"):
                assert page.locator(".zslkit-map canvas").count() >= 3, path.name
                _drive_maps(page, f"report_{path.stem}")
                x, y = page.evaluate(POINT_JS, [2, 0, 0])
                _wait_until(lambda: page.evaluate(UNDER_JS, [2, *page.evaluate(POINT_JS, [2, 0, 0])]), 30)
                x, y = page.evaluate(POINT_JS, [2, 0, 0])
                page.mouse.click(x, y)
                page.wait_for_selector("audio.zslkit-audio", state="attached", timeout=10_000)
            if path.stem == "04_maps":
                assert page.locator("h1").first.inner_text() == "smoke: tag and joint maps"
            if path.stem == "04_embeddings":  # the explorer cell says it lives in the lab
                assert page.get_by_text("The explorer is interactive: open this notebook in JupyterLab").count() == 1
            if path.name == "index.html":
                assert page.locator("img").count() >= 5 and page.locator("table").count() >= 1
                assert page.locator(".verdict li").count() >= 2 and page.locator("figcaption").count() >= 5
                # every term links to an entry of the page's glossary
                assert page.evaluate("() => [...document.querySelectorAll('a.term')].every(a => "
                                     "document.getElementById(a.getAttribute('href').slice(1)))")
                assert page.locator("a.term").count() >= 10
        except Exception:
            page.screenshot(path=SHOTS / f"report_{path.stem}_failure.png", full_page=True)
            raise
        finally:
            page.close()
