"""hwnas's exceptions: one hierarchy for the Python API and the command line.

Every error hwnas raises on purpose is an ``HwnasError`` whose ``exit_code`` is what the ``hwnas`` command
exits with when that error ends it (one line on stderr, never a traceback):

| exception | also a | exit code | raised for |
|---|---|---|---|
| ``InputError`` | ``ValueError`` | 2 | bad input, found before anything ran or was written |
| ``ConfigError`` | ``InputError`` | 2 | a config key or value (the message names both) |
| ``CostQueryError`` | ``InputError`` | 2 | an unknown profile or operator, an impossible shape |
| ``StorageError`` | ``InputError`` | 2 | a storage that cannot be used (bucket, endpoint, credentials) |
| ``ExperimentExists`` | ``InputError`` | 2 | a new run named a folder that holds results |
| ``ExperimentInUse`` | ``InputError`` | 2 | another driver runs that experiment now |
| ``PickError`` | ``InputError`` | 2 | a pick rule or trial id that picks nothing |
| ``CheckpointError`` | ``InputError`` | 2 | a checkpoint that cannot be resumed from |
| ``NotFoundError`` | ``InputError``, ``FileNotFoundError`` | 2 | a file, folder or experiment that does not exist |
| ``ExportCheckError`` | ``InputError`` | 2 | onnxruntime and PyTorch disagree beyond ``atol`` |
| ``SaveError`` | ``OSError`` | 3 | results that could not be written |
| ``StorageWriteError`` | ``SaveError`` | 3 | a write to the storage that failed after the checks |
| ``ResultsNotSaved`` | ``SaveError`` | 3 | a search whose final tables went to a local folder instead |

The API functions raise these types only: a plain ``ValueError`` or ``FileNotFoundError`` from the code
underneath reaches the caller as an ``InputError`` or ``NotFoundError`` with the same message (the
original is its ``__cause__``), as does the cost model's own ``cost_models.CostQueryError`` (this
``CostQueryError`` is a subclass of it, so either ``except`` works) and the search core's checkpoint
error. Other ``OSError`` (a permission, a connection) and pyarrow's errors pass through unchanged; the
command line exits 2 for ``PermissionError`` / ``ConnectionError`` and 3 for the others.
"""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, ClassVar, TypeVar

from cost_models.profile import CostQueryError as ModelCostQueryError
from results.claim import ExperimentInUse
from results.experiment_record import ExperimentExists
from results.picking import PickError
from results.storage import StorageError, StorageWriteError
from searchspace.errors import EXIT_BAD_INPUT, HwnasError, InputError, NotFoundError, SaveError
from searchspace.schema import ConfigError

class CostQueryError(ModelCostQueryError, InputError):
    """A cost query that cannot be answered: an unknown profile or operator, an impossible shape or stride
    (exit code 2). A subclass of ``cost_models.CostQueryError``."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class CheckpointError(InputError):
    """A checkpoint file that cannot be resumed from: unreadable, another format, or written for another
    config or genotype (exit code 2). The message names the file: remove it to start again."""


class ResultsNotSaved(SaveError):
    """``hwnas.search`` ran, but its final tables could not be written to the storage (exit code 3).

    Every trial's row is in a local folder instead (``experiment.summary.local_copy``); upload it when the
    store is back, or resume the experiment.

    Attributes:
        experiment: The run's results, read from the local copy's tables (``.summary`` says why): an
            ``hwnas.Experiment`` (typed ``Any`` here: this module is below the one that defines it).
    """

    def __init__(self, message: str, experiment: Any) -> None:
        super().__init__(message)
        self.experiment = experiment


class ExportCheckError(InputError):
    """The exported ONNX file's logits differ from PyTorch's by more than ``atol`` (exit code 2); the file is
    kept for inspection.

    Attributes:
        result: What the check measured (``max_abs_diff``, ``argmax_agreement``, ``images``, ...): an
            ``hwnas.Exported`` (typed ``Any`` here, as ``ResultsNotSaved.experiment``).
    """

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


def typed(exc: BaseException) -> HwnasError | None:
    """The ``HwnasError`` that stands for ``exc`` (same message), or None when ``exc`` keeps its own type."""
    if isinstance(exc, HwnasError):
        return None
    text = str(exc)
    if isinstance(exc, ModelCostQueryError):
        return CostQueryError(text)
    state = sys.modules.get("trainables.state")  # only loaded where a checkpoint could have been read
    if state is not None and isinstance(exc, state.CheckpointError):
        return CheckpointError(text)
    if type(exc) is FileNotFoundError:  # the same message: errno, strerror and filename where it had them
        if exc.errno is not None and exc.filename is not None:
            return NotFoundError(exc.errno, exc.strerror, exc.filename)
        return NotFoundError(*exc.args)
    if type(exc) is ValueError:
        return InputError(text)
    return None


F = TypeVar("F", bound=Callable[..., Any])


def raises_typed(fn: F) -> F:
    """Decorate an API function: the errors it raises reach the caller as ``HwnasError`` types (``typed``),
    the original as ``__cause__``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            new = typed(exc)
            if new is None:
                raise
            raise new from exc

    return wrapper  # type: ignore[return-value]


__all__ = ["CheckpointError", "ConfigError", "CostQueryError", "ExperimentExists", "ExperimentInUse",
           "ExportCheckError", "HwnasError", "InputError", "NotFoundError", "PickError", "ResultsNotSaved",
           "SaveError", "StorageError", "StorageWriteError", "raises_typed", "typed"]
