"""2-D projections of embeddings for the maps of stage 04 (UMAP, seeded)."""
from __future__ import annotations

import warnings

import numpy as np

from ..errors import DataError


def umap_coords(x: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
                metric: str = "cosine") -> np.ndarray:
    """2-D UMAP of the rows of ``x``, deterministic for a seed.

    ``n_neighbors`` is capped at ``n - 1`` so small tag sets work; a seed makes umap-learn run
    single-threaded, which is what makes it reproducible.

    Parameters
    ----------
    x : np.ndarray [shape=(n, dim)]
        At least 4 rows, none with NaN (else :class:`~zslkit.errors.DataError`).
    seed : int
    n_neighbors : int
    min_dist : float
    metric : str
        ``"cosine"`` or ``"euclidean"``.

    Returns
    -------
    np.ndarray [shape=(n, 2), dtype=float32]
    """
    x = np.asarray(x, dtype=np.float32)
    if len(x) < 4 or np.isnan(x).any():
        raise DataError(f"UMAP needs at least 4 rows without NaN; got {len(x)} rows, "
                        f"{int(np.isnan(x).any(axis=1).sum())} with NaN")
    import umap
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        warnings.filterwarnings("ignore", message=".*k >= N.*")
        reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(x) - 1), min_dist=min_dist, metric=metric,
                            random_state=seed, n_components=2, init="spectral" if len(x) > 8 else "random")
        return reducer.fit_transform(x).astype(np.float32)
