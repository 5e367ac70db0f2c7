"""The search result record, FLOP counting, and checkpoint files."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import SearchConfig
from .genotype import Genotype
from .layout import OpInstance
from .ops import op_primitives


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
    accuracy: float  # target network, trained from scratch, on the test split
    params: int  # target network parameters
    flops: int  # target network multiply-accumulates per image (the NAS literature's "FLOPs")
    skip_counts: tuple[int, ...]  # skip_connects per derived cell
    dram_time_us: float  # target network, one inference at cost_batch, on config.profile
    dram_energy_uj: float
    dram_bytes: int
    seconds: float  # wall time of the whole trial
    phase_seconds: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # per-epoch metrics

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
            "params": self.params, "flops": self.flops,
            "skip_count": self.skip_count, "skip_counts": list(self.skip_counts),
            "dram_time_us": self.dram_time_us, "dram_energy_uj": self.dram_energy_uj, "dram_bytes": self.dram_bytes,
            "seconds": self.seconds, "phase_seconds": self.phase_seconds,
            "config": c.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_record(), indent=2)


def network_macs(instances: list[OpInstance]) -> int:
    """Multiply-accumulates per image of a network given as operator instances (convs and linears)."""
    total = 0
    for inst in instances:
        h = inst.h
        shapes: list[int] = []  # spatial size of each primitive's output, by index
        for p in op_primitives(inst.op, inst.c_in, inst.c_out, inst.stride):
            src = p.inputs[0] if p.inputs else len(shapes) - 1
            h_in = h if src < 0 else shapes[src]
            h_out = -(-(h_in - p.offset) // p.stride) if p.kind in ("conv", "max_pool", "avg_pool") else h_in
            if p.kind == "global_avg_pool":
                h_out = 1
            if p.kind == "conv":
                total += p.c_out * (p.c_in // p.groups) * p.kernel * p.kernel * h_out * h_out
            elif p.kind == "linear":
                total += p.c_in * p.c_out
            shapes.append(h_out)
    return total


# ---------------------------------------------------------------- checkpoints
_IGNORED_KEYS = ("device", "fast")  # execution knobs: a checkpoint moves between CPU and GPU


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomic write: a crash mid-save leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | Path | None, config: SearchConfig) -> dict[str, Any] | None:
    if path is None or not Path(path).exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    saved = {k: v for k, v in state.get("config", {}).items() if k not in _IGNORED_KEYS}
    want = {k: v for k, v in config.to_dict().items() if k not in _IGNORED_KEYS}
    if saved != want:
        diff = sorted(k for k in set(saved) | set(want) if saved.get(k) != want.get(k))
        raise ValueError(f"checkpoint {path} was written by another config (differs in: {', '.join(diff)}); "
                         "remove it or run with the config that wrote it")
    return state
