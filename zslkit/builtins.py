"""The built-in registry entries: importing this module registers them.

:mod:`zslkit.config` imports it before it builds the schema; user entries come from
``run.plugins`` (:func:`zslkit.registry.load_plugins`).
"""
from __future__ import annotations

from .data import sideinfo  # noqa: F401
from .data.datasets import fma, folder, gtzan, jamendo, m21, mtat, seed  # noqa: F401
from .evaluate import heads  # noqa: F401
from .model import encoders  # noqa: F401
