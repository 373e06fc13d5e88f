"""Exception types. Every message names the file, key or value that is wrong."""


class ZslkitError(Exception):
    """Base class of every error zslkit raises on purpose."""


class ParamError(ZslkitError, ValueError):
    """A parameter is unknown, of the wrong type, out of range, or names a missing file."""


class DataError(ZslkitError):
    """Input data (audio, CSV, pickle, dataset folder) is missing or malformed."""


class SideInfoUnavailable(ParamError):
    """A side-information kind cannot be built for this dataset: it lacks what the kind's settings read
    (``knowledge.csv``, a tag group). Stage 02 leaves such a kind out with this message, and the run goes
    on without the models that would train on it (:meth:`zslkit.plan.RunPlan.of_run`); called alone, a
    builder raises it like any :class:`ParamError`."""


class UnsafePickleError(DataError):
    """A pickle asked to construct an object outside the admitted plain types."""


class RunError(ZslkitError):
    """A run could not start or a notebook failed."""
