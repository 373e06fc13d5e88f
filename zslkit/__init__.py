"""zslkit: a notebook-driven workbench for zero-shot music tagging.

The package holds all logic; the numbered notebooks in ``notebooks/`` call it and show results.
"""
from .errors import DataError, ParamError, RunError, UnsafePickleError, ZslkitError

__version__ = "0.1.0"
__all__ = ["ZslkitError", "ParamError", "DataError", "UnsafePickleError", "RunError", "__version__"]
