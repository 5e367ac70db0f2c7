"""hwnas: hardware-aware neural architecture search on Ray.

Finds cells that are accurate *and* cheap in DRAM traffic on a chosen processor, and hands you the
accuracy / DRAM-cost Pareto front as pyarrow tables (Parquet, local or on S3):

    import hwnas

    exp = hwnas.search("fashion", seeds=[0, 1])    # a Ray Tune experiment
    df = exp.front().to_pandas()                                 # the Pareto front
    point = hwnas.pick(exp, "knee")                              # one point of it
    hwnas.recost(exp, ["eyeriss", "h100"])                       # the front on other processors
    run = hwnas.train(point, preset="fashion", out="runs/knee")  # its network at full size
    hwnas.export(run)                                            # runs/knee/model.onnx, onnxruntime-checked

The ``hwnas`` command is a thin layer over these functions, and its exit codes are the ``exit_code`` of
the exceptions below (``hwnas.errors``). Importing ``hwnas`` loads neither Ray nor torch: ``search``
imports Ray when it runs, ``train`` and ``export`` torch.

The top tier: this package sits over every other one (``orchestrator``, ``results``, ``trainables``,
``cost_models``, ``searchspace``) and nothing imports it.
"""
from __future__ import annotations

from .costing import DeployedCost, cost, cost_onnx, op_cost, profiles, rank_correlations, recost
from .deploy import Exported, Trained, export, pick, train
from .errors import (CheckpointError, ConfigError, CostQueryError, ExperimentExists, ExperimentInUse,
                     ExportCheckError, HwnasError, InputError, NotFoundError, PickError, ResultsNotSaved, SaveError,
                     StorageError, StorageWriteError)
from .experiment import Experiment, load, search


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hwnas")
    except PackageNotFoundError:
        return "unknown"


#: the installed hwnas version (pyproject.toml), or "unknown" in a bare source tree
__version__: str = _version()

__all__ = [
    # experiments
    "search", "load", "Experiment",
    # costs
    "cost", "cost_onnx", "op_cost", "profiles", "recost", "rank_correlations", "DeployedCost",
    # from a front to a deployed network
    "pick", "train", "export", "Trained", "Exported",
    # errors
    "HwnasError", "InputError", "SaveError", "ConfigError", "CostQueryError", "StorageError", "StorageWriteError",
    "ExperimentExists", "ExperimentInUse", "PickError", "CheckpointError", "NotFoundError", "ExportCheckError",
    "ResultsNotSaved",
    "__version__",
]
