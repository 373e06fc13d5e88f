"""The built-in registry entries: importing this module registers them.

:mod:`zslkit.config` imports it before it builds the schema; user entries come from
``run.plugins`` (:func:`zslkit.registry.load_plugins`).
"""
from __future__ import annotations

from . import encoders, heads, sideinfo  # noqa: F401
from .datasets import fma, folder, gtzan, jamendo, m21, mtat, seed  # noqa: F401
