"""The search result: what one trial found, and its JSON record (``hwnas trial --out``, Tune's final result).

Checkpoints (the state of a trial in progress) are ``trainables.state``."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from searchspace.config import SearchConfig
from searchspace.genotype import Genotype
from searchspace.layout import deploy_record


@dataclass(frozen=True)
class SearchResult:
    config: SearchConfig
    genotype: Genotype
    groups: dict[str, list[str]]  # group name -> operator names
    stage1_choice: list[list[str]]  # [cell][edge] -> winning group name
    stage2_candidates: list[list[list[str]]]  # [cell][edge] -> operators of the winning group
    stage1_epochs: int
    stage2_epochs: int
    supernet_accuracy: float  # supernet on the held-out val split at the end of stage 2
    accuracy: float  # target network, trained from scratch, on the test split: mean over the eval_seeds training seeds
    params: int  # target network parameters
    flops: int  # target network multiply-accumulates per image (the NAS literature's "FLOPs")
    skip_counts: tuple[int, ...]  # skip_connects per derived cell
    dram_time_us: float  # deployed network (deploy_* keys, 0 = the target's), one inference at cost_batch, on config.profile
    dram_energy_uj: float
    dram_bytes: int
    seconds: float  # wall time of the whole trial
    phase_seconds: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # per-epoch metrics
    accuracy_std: float | None = None  # sample std (ddof=1) of the training seeds' accuracies; None for one seed
    eval_accuracies: tuple[float, ...] = ()  # test accuracy under each training seed (eval_seeds), in seed order

    @property
    def skip_count(self) -> int:
        return sum(self.skip_counts)

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable dict: the `hwnas trial --out` file and the Tune trial's final record."""
        c = self.config
        return {
            "seed": c.seed, "dataset": c.dataset, "profile": c.profile,
            "lambda_time": c.lambda_time, "lambda_energy": c.lambda_energy,
            "genotype": self.genotype.to_dict(), "groups": self.groups,
            "stage1_choice": self.stage1_choice, "stage2_candidates": self.stage2_candidates,
            "stage1_epochs": self.stage1_epochs, "stage2_epochs": self.stage2_epochs,
            "supernet_accuracy": self.supernet_accuracy, "accuracy": self.accuracy,
            "accuracy_std": self.accuracy_std, "eval_accuracies": list(self.eval_accuracies),
            "params": self.params, "flops": self.flops,
            "skip_count": self.skip_count, "skip_counts": list(self.skip_counts),
            "dram_time_us": self.dram_time_us, "dram_energy_uj": self.dram_energy_uj, "dram_bytes": self.dram_bytes,
            **deploy_record(c),
            "seconds": self.seconds, "phase_seconds": self.phase_seconds,
            "config": c.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_record(), indent=2)
