"""zslkit: a notebook-driven workbench for zero-shot music tagging.

The package holds all logic; the numbered notebooks in ``notebooks/`` call it and show results.
Its floors follow the data, and imports only go down (docs/architecture.md)::

    top        cli, transfer, tagging       the command; a trained run applied to other audio
    run/       runner, session, sweep, ...  papermill orchestration and the run folder's records
    show/      viz, maps, explore, tables   figures, maps, the explorer, report pages
    evaluate/  embed, protocol, metrics,    stage 04 (embeddings) and 05 (the paper's protocol,
               heads, diagnostics, ...      zero-shot heads, diagnostics)
    model/     encoders, trainer, train,    stage 03: networks, batches, training, checkpoints
               inference, ...
    data/      audio, preprocess, melstore, stages 01-02: the front end, mels, importers,
               datasets/, splits, sideinfo/ splits, side information
    ground     errors, io, registry,        no torch, no stage: the params schema and the built-in
               builtins, config, plan,      entries it declares, the run plan (models, labels,
               layout                       notation), every path on disk
"""
from .errors import DataError, ParamError, RunError, UnsafePickleError, ZslkitError

__version__ = "0.1.0"
__all__ = ["ZslkitError", "ParamError", "DataError", "UnsafePickleError", "RunError", "__version__"]
