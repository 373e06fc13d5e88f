"""Registries: the five seams where zslkit is extended.

A registry maps a name to an :class:`Entry`: the object that does the work (a builder function or
a class), the parameter section it owns, a one-line description, and flags. :mod:`zslkit.config`
derives allowed values, defaults and ``zslkit params --describe`` from the registries, so adding
an importer, a side-information kind, an encoder, a zero-shot head or a training augmentation is one
module plus one registration::

    from zslkit.registry import SIDEINFO, Field

    @SIDEINFO.register("onehot", params={"scale": Field("float", 1.0, "vector length")},
                       doc="one-hot vectors (a toy)", free_text=False)
    def onehot(ctx, p):
        ...

Registries
----------
==============  ======================  ============================  =========================
registry        selector parameter      entry section                 what an entry is
==============  ======================  ============================  =========================
``DATASETS``    ``data.source``         ``data.<name>``               importer/builder
``SIDEINFO``    ``sideinfo.kinds``      ``sideinfo.<name>``           tag -> vector table builder
``ENCODERS``    ``model.encoder``       ``model.<name>``              audio encoder class
``HEADS``       ``evaluate.heads``      ``heads.<name>``              zero-shot head
``AUGMENTS``    ``train.augment``       ``train.augment[i]``          training augmentation
==============  ======================  ============================  =========================

An augmentation is chosen with its parameters in one item of a list (``train.augment: [{name: gain, db: 6}]``),
not in a section: the same one may be listed twice, and the order is the order they are applied in.

The contract of each kind of entry is written in the module that holds its built-in entries' code
(:mod:`zslkit.data.datasets`, :mod:`zslkit.data.sideinfo`, :mod:`zslkit.model.encoders`,
:mod:`zslkit.evaluate.heads`, :mod:`zslkit.model.augment`) and in ``docs/extending.md``. The built-in
entries are declared in :mod:`zslkit.builtins`, their objects by ``"module:attribute"`` reference: a
registry knows every name, section, doc and flag without importing the code (torch, pandas), which is
imported when an entry first works (:attr:`Entry.obj`).

User modules are loaded with :func:`load_plugins` (the ``run.plugins`` parameter): a module name
on ``sys.path`` or a ``.py`` file, imported once per process.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import ParamError


@dataclass(frozen=True)
class Field:
    """One parameter: its type, default, limits, and what depends on it.

    ``kind`` is one of ``int float str bool list dict path``. ``lo``/``hi`` bound numbers.
    ``choices`` restricts strings (a callable is called when the schema is built, so choices can
    follow a registry). ``exists`` makes a path that must exist. ``item`` is the type of list items.
    ``check`` is an extra predicate with the message it explains.

    What depends on the value (:mod:`zslkit.config` derives the runner's, the trainer's and the mel
    store's key tables from these):

    - ``stage``: the first notebook that reads it, when later than its section's
      (:data:`zslkit.config.STAGE_OF_SECTION`); ``audio.segment_frames`` is read from stage ``"03"``.
    - ``neutral``: no number depends on it (where or how work runs): a change reruns no stage and is
      left out of checkpoint digests.
    - ``recorded_in``: ``"mels"`` (a dataset's ``dataset.json``) or ``"checkpoint"`` (each checkpoint's
      architecture): the value is stored there, and what is stored is used only with the same value.

    ``entries`` (a :class:`Registry`, with ``kind="list"``) makes a list of that registry's entries, each item
    ``{name: <entry>, <its parameters>}`` or the bare name (its defaults): :mod:`zslkit.config` checks each
    item's parameters against the entry's Fields (errors name ``train.augment[1].db``) and fills in defaults.
    """

    kind: str
    default: Any
    doc: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: tuple | Callable[[], tuple] | None = None
    nullable: bool = False
    exists: bool = False
    item: str | None = None
    check: tuple[Callable[[Any], bool], str] | None = None
    stage: str | None = None
    neutral: bool = False
    recorded_in: str | None = None
    entries: Registry | None = None


#: a lazy reference to the object of an entry: ``"package.module:attribute"``
REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class Entry:
    """A registered name: the object that does the work, its parameter section, its flags.

    ``target`` is the object itself or its ``"module:attribute"`` reference; :attr:`obj` imports a
    reference on first use, so that a declared entry costs no import until it works.
    """

    name: str
    target: Any
    params: dict[str, Any] = field(default_factory=dict)
    doc: str = ""
    flags: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def obj(self) -> Any:
        """The object that does the work (a reference is imported now, once)."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            raise ParamError(f"entry {self.name!r}: {self.target!r} names nothing in {module}") from None
        return obj

    def __getattr__(self, flag: str) -> Any:
        if flag.startswith("__"):  # copy and pickle probe for these before the fields exist
            raise AttributeError(flag)
        try:
            return self.flags[flag]
        except KeyError:
            raise AttributeError(f"entry {self.name!r} has no flag {flag!r}") from None


class Registry:
    """Names -> :class:`Entry`, in registration order.

    Parameters
    ----------
    what : str
        What an entry is, for messages ("dataset importer").
    selector : str
        The parameter that picks entries ("data.source"), named in errors.
    reserved : sequence of str
        Keys of the section where entries' own sections live; an entry may not take these names.
    flags : dict
        Flags every entry carries, with their defaults.
    reserved_params : sequence of str
        Names an entry's parameters may not take (``name``, for entries chosen as list items).
    """

    def __init__(self, what: str, selector: str, reserved: Sequence[str] = (), flags: dict | None = None,
                 reserved_params: Sequence[str] = ()):
        self.what, self.selector = what, selector
        self.reserved = set(reserved)
        self.reserved_params = set(reserved_params)
        self.flag_defaults = dict(flags or {})
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, obj: Any = None, *, params: dict | None = None, doc: str = "",
                 replace: bool = False, **flags):
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted.

        ``obj`` may be a ``"module:attribute"`` reference (with ``doc``): the module is imported when
        the entry first works, not when it is registered, so a registry lists its entries, their
        sections and flags without importing torch (:mod:`zslkit.builtins`).
        """
        if obj is None:
            return lambda o: self.register(name, o, params=params, doc=doc, replace=replace, **flags) or o
        if not name.isidentifier():
            raise ParamError(f"{self.what} name {name!r}: letters, digits and '_' only")
        if name in self.reserved:
            raise ParamError(f"{self.what} name {name!r} is taken by a fixed parameter of the section")
        unknown = set(flags) - set(self.flag_defaults)
        if unknown:
            raise ParamError(f"{self.what} {name!r}: unknown flag {sorted(unknown)[0]!r}; "
                             f"known: {', '.join(self.flag_defaults) or 'none'}")
        taken = set(params or {}) & self.reserved_params
        if taken:
            raise ParamError(f"{self.what} {name!r}: a parameter may not be called {sorted(taken)[0]!r}")
        if name in self._entries and not replace:
            raise ParamError(f"{self.what} {name!r} is already registered (pass replace=True)")
        if isinstance(obj, str) and not REFERENCE.fullmatch(obj):
            raise ParamError(f"{self.what} {name!r}: {obj!r} is not a 'module:attribute' reference")
        if isinstance(obj, str) and not doc:
            raise ParamError(f"{self.what} {name!r}: a reference ({obj!r}) needs doc=, as its module is not imported")
        doc = doc or ("" if isinstance(obj, str) else (obj.__doc__ or "").strip().split("\n")[0])
        self._entries[name] = Entry(name, obj, dict(params or {}), doc, {**self.flag_defaults, **flags})
        return obj

    def __deepcopy__(self, memo) -> "Registry":
        return self  # one per process: a copied schema (a Field(entries=...)) refers to the same registry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            raise ParamError(f"{self.selector}: {name!r} is not a registered {self.what}; "
                             f"known: {', '.join(self._entries)}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def names(self, **flags) -> tuple[str, ...]:
        """Registered names, optionally only those whose flags equal ``flags``."""
        return tuple(e.name for e in self if all(e.flags.get(k) == v for k, v in flags.items()))


DATASETS = Registry("dataset importer", "data.source", reserved=("source", "name"))
SIDEINFO = Registry("side-information kind", "sideinfo.kinds", reserved=("kinds", "show"),
                    flags={"free_text": False, "control": False})
ENCODERS = Registry("audio encoder", "model.encoder", reserved=("encoder", "sideinfo", "projection"),
                    flags={"frozen": False, "pretrained": False, "front_end": None})
HEADS = Registry("zero-shot head", "evaluate.heads", flags={"trained": False})
AUGMENTS = Registry("training augmentation", "train.augment", reserved_params=("name",))


# ----------------------------------------------------------------------------- plugins

def load_plugins(names: Sequence[str], root: str | Path | None = None) -> list[str]:
    """Import user modules that register entries (``run.plugins``), once per process.

    Each name is a module on ``sys.path`` (``mylab.importers``) or a ``.py`` file (relative paths
    from ``root``). Returns the module names.
    """
    loaded = []
    for name in names:
        if name.endswith(".py"):
            path = Path(name).expanduser()
            path = (Path(root) / path if root is not None and not path.is_absolute() else path).resolve()
            if not path.is_file():
                raise ParamError(f"run.plugins: file not found: {path}")
            same = [m for m in list(sys.modules.values())
                    if getattr(m, "__file__", None) and Path(m.__file__).resolve() == path]
            if same:
                loaded.append(same[0].__name__)
                continue
            mod_name = f"zslkit_plugin_{path.stem}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception:
                del sys.modules[mod_name]
                raise
            loaded.append(mod_name)
        else:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise ParamError(f"run.plugins: cannot import {name!r}: {exc}") from exc
            loaded.append(name)
    return loaded
