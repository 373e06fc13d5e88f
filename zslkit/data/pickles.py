"""A restricted unpickler for the original project's pickles.

:class:`RestrictedUnpickler` admits only plain containers, numbers, strings and numpy arrays; a
pickle that asks for anything else (a function call, a class) is refused with
:class:`~zslkit.errors.UnsafePickleError` naming the file and the global. zslkit writes no pickles
of its own except the original split files it exports for comparison.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

from ..errors import DataError, UnsafePickleError

_ALLOWED = {
    ("builtins", n) for n in ("list", "dict", "tuple", "set", "frozenset", "int", "float",
                              "complex", "str", "bytes", "bytearray", "bool", "range", "slice")
} | {("__builtin__", n) for n in ("list", "dict", "tuple", "set", "frozenset", "int", "float",
                                  "long", "complex", "str", "unicode", "bool")} | {
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol-2 pickles rebuild bytes (array buffers) with it
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only constructs plain containers, numbers, strings and numpy arrays."""

    def __init__(self, file, source: str = "<pickle>"):
        super().__init__(file, encoding="latin1")  # Python 2 pickles of numpy arrays
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickleError(f"{self.source}: refused to load global {module}.{name}; only "
                                "plain containers, numbers, strings and numpy arrays are admitted")


def safe_load_pickle(path: str | os.PathLike) -> Any:
    """Load a pickle file through :class:`RestrictedUnpickler`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: pickle not found")
    with open(path, "rb") as fh:
        try:
            return RestrictedUnpickler(fh, str(path)).load()
        except UnsafePickleError:
            raise
        except Exception as exc:  # truncated or foreign data: name the file
            raise DataError(f"{path}: cannot unpickle: {exc}") from exc


def safe_loads_pickle(data: bytes, source: str = "<bytes>") -> Any:
    return RestrictedUnpickler(io.BytesIO(data), source).load()
