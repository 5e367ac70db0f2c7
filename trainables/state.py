"""The typed state of one trial's search, and its plain-data form (the checkpoint).

A trial moves through three phases: ``stage1`` -> ``stage2`` -> ``eval`` (the target network). The
running phase's ``PhaseProgress`` holds what its next epoch needs (epoch counter, convergence count,
the model/optimiser snapshot after the last finished epoch); a finished stage leaves a frozen outcome
(``Stage1Outcome``, ``Stage2Outcome``) that the later steps read.

``to_plain`` / ``from_plain`` convert to and from nested dicts/lists of tensors, numbers and strings
only, so a checkpoint loads with ``torch.load(weights_only=True)``: no pickled Python objects, so a
file in the results bucket cannot run code on the worker that resumes from it. The file is
``{"format": FORMAT, "config": config.to_dict(), **state.to_plain()}``, written atomically.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from searchspace.config import SearchConfig, resolved_arch_step
from searchspace.files import atomic_write
from searchspace.genotype import Genotype
from searchspace.groups import Groups

PHASES = ("stage1", "stage2", "eval")
StateDict = dict[str, Any]  # a module's or an optimiser's state_dict (tensors, numbers, lists, dicts)
Names = tuple[tuple[str, ...], ...]  # [alpha set][edge] -> a name


@dataclass(frozen=True, eq=False)
class PhaseProgress:
    """The running phase after its last finished epoch (all defaults: the phase has not started).

    The snapshots are the live ``state_dict()``s (by reference, not copies): the checkpoint written
    right after the epoch is what makes them durable.
    """

    epoch: int = 0  # finished epochs of this phase
    seconds: float = 0.0  # wall seconds spent in this phase's epochs, over every run of the trial
    stable: int = 0  # search stages: arch-updating epochs in a row with no edge's argmax changing
    prev_argmax: Names | None = None  # search stages: strongest candidate per edge after the last epoch
    net: StateDict | None = None  # the phase's network
    alpha: torch.Tensor | None = None  # (n_sets, E, K_max) architecture parameters, on CPU
    w_opt: StateDict | None = None  # weight optimiser
    a_opt: StateDict | None = None  # architecture optimiser (search stages)

    @property
    def started(self) -> bool:
        return self.net is not None


@dataclass(frozen=True, eq=False)
class Stage1Outcome:
    """Claim 3's result: per alpha set and edge, the group whose representative won."""

    choice: Names  # [set][edge] -> winning group name
    strength: torch.Tensor  # (n_sets, E) float32: the winner's softmax weight (ranks edges at derivation)
    epochs: int
    net: StateDict  # the stage-1 supernet: stage 2 starts from its trained modules
    weight: torch.Tensor | None = None  # (n_sets, E, K1) final mixing weights: an edge's fallback groups at derivation


@dataclass(frozen=True, eq=False)
class Stage2Outcome:
    """Claim 4's result: the mixing weights over each edge's winning-group operators."""

    op_weight: torch.Tensor  # (n_sets, E, K_max) float32 final softmax(alpha), 0 in padded slots
    epochs: int
    supernet_accuracy: float  # the stage-2 supernet on the val split (BN re-estimated)


@dataclass(frozen=True, eq=False)
class SearchState:
    """Everything a trial has decided and learnt so far; what a checkpoint holds."""

    phase: str = "stage1"
    groups: Groups | None = None  # step 0 (None until chosen or learned)
    ref: tuple[float, float] | None = None  # (T_ref us, E_ref uJ): uniform-alpha stage-1 cost, fixed per trial
    progress: PhaseProgress = PhaseProgress()
    stage1: Stage1Outcome | None = None
    stage2: Stage2Outcome | None = None
    genotype: Genotype | None = None  # derived after stage 2
    history: tuple[dict[str, Any], ...] = ()  # per-epoch metrics, every phase
    phase_seconds: Mapping[str, float] = field(default_factory=dict)  # finished phases
    wall: float = 0.0  # wall seconds of the whole trial up to the last checkpoint
    rng: torch.Tensor | None = None  # CPU generator state of the running phase's data order / augmentation
    # stream: the search's, which eval seed 0 continues; while eval seed k >= 1 trains, that seed's own
    eval_accuracies: tuple[float, ...] = ()  # eval phase: test accuracy of each finished training seed; the
    # seed in training (``progress``) is the next one, len(eval_accuracies)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"unknown search phase {self.phase!r}; phases: {', '.join(PHASES)}")

    @property
    def resumed(self) -> bool:
        """True unless this is a fresh trial (stage 1 not yet begun)."""
        return self.phase != "stage1" or self.progress.epoch > 0

    def after_epoch(self, progress: PhaseProgress, metrics: dict[str, Any]) -> "SearchState":
        return replace(self, progress=progress, history=self.history + (metrics,))

    def next_phase(self, phase: str, **outcome: Any) -> "SearchState":
        """Close the running phase (its seconds go to ``phase_seconds``) and start ``phase`` afresh."""
        seconds = {**self.phase_seconds, self.phase: self.progress.seconds}
        return replace(self, phase=phase, progress=PhaseProgress(), phase_seconds=seconds, **outcome)

    # ------------------------------------------------------------ plain data (the checkpoint)
    def to_plain(self) -> dict[str, Any]:
        p, s1, s2 = self.progress, self.stage1, self.stage2
        return {
            "phase": self.phase,
            "groups": None if self.groups is None else self.groups.to_dict(),
            "ref": None if self.ref is None else [float(r) for r in self.ref],
            "progress": {"epoch": p.epoch, "seconds": p.seconds, "stable": p.stable,
                         "prev_argmax": None if p.prev_argmax is None else [list(r) for r in p.prev_argmax],
                         "net": p.net, "alpha": p.alpha, "w_opt": p.w_opt, "a_opt": p.a_opt},
            "stage1": None if s1 is None else {"choice": [list(r) for r in s1.choice], "strength": s1.strength,
                                               "epochs": s1.epochs, "net": s1.net, "weight": s1.weight},
            "stage2": None if s2 is None else {"op_weight": s2.op_weight, "epochs": s2.epochs,
                                               "supernet_accuracy": s2.supernet_accuracy},
            "genotype": None if self.genotype is None else self.genotype.to_dict(),
            "history": [dict(m) for m in self.history],
            "phase_seconds": dict(self.phase_seconds),
            "wall": self.wall,
            "rng": self.rng,
            "eval_accuracies": [float(a) for a in self.eval_accuracies],
        }

    @classmethod
    def from_plain(cls, d: Mapping[str, Any]) -> "SearchState":
        """Inverse of ``to_plain``; KeyError/TypeError/ValueError on anything malformed."""
        p, s1, s2 = d["progress"], d["stage1"], d["stage2"]
        progress = PhaseProgress(
            epoch=int(p["epoch"]), seconds=float(p["seconds"]), stable=int(p["stable"]),
            prev_argmax=None if p["prev_argmax"] is None else _names(p["prev_argmax"]),
            net=p["net"], alpha=_tensor_or_none(p["alpha"]), w_opt=p["w_opt"], a_opt=p["a_opt"])
        return cls(
            phase=str(d["phase"]),
            groups=None if d["groups"] is None else Groups.from_dict(d["groups"]),
            ref=None if d["ref"] is None else (float(d["ref"][0]), float(d["ref"][1])),
            progress=progress,
            stage1=None if s1 is None else Stage1Outcome(_names(s1["choice"]), _tensor(s1["strength"]),
                                                         int(s1["epochs"]), dict(s1["net"]),
                                                         _tensor_or_none(s1.get("weight"))),
            stage2=None if s2 is None else Stage2Outcome(_tensor(s2["op_weight"]), int(s2["epochs"]),
                                                         float(s2["supernet_accuracy"])),
            genotype=None if d["genotype"] is None else Genotype.from_dict(d["genotype"]),
            history=tuple(dict(m) for m in d["history"]),
            phase_seconds={str(k): float(v) for k, v in d["phase_seconds"].items()},
            wall=float(d["wall"]),
            rng=_tensor_or_none(d["rng"]),
            # a checkpoint from before eval_seeds trained one seed: none finished
            eval_accuracies=tuple(float(a) for a in d.get("eval_accuracies", ())))


def _names(rows) -> Names:
    return tuple(tuple(str(x) for x in row) for row in rows)


def _tensor(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a tensor, got {type(x).__name__}")
    return x


def _tensor_or_none(x) -> torch.Tensor | None:
    return None if x is None else _tensor(x)


# ---------------------------------------------------------------- checkpoint files
log = logging.getLogger(__name__)

FORMAT = "hwnas-search-state/2"  # bump when to_plain changes shape; older files are refused, not misread
# execution and reporting knobs (a checkpoint moves between CPU and GPU); none changes what the search learns
_IGNORED_KEYS = ("device", "fast", "compile", "channels_last", "val_every")
#: keys whose default changed the behaviour when they were added: a checkpoint without the key ran like this
_BEFORE_KEY = {"supernet_pool_bn": True, "arch_step": "alternate"}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be resumed from (unreadable, another format, or another config)."""


def save_checkpoint(path: str | Path, state: SearchState, config: SearchConfig) -> None:
    """Atomic write: a crash mid-save leaves the previous checkpoint intact."""
    plain = {"format": FORMAT, "config": config.to_dict(), **state.to_plain()}
    atomic_write(path, lambda tmp: torch.save(plain, tmp))


def load_problem(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line, without torch's advice to retry
    with ``weights_only=False`` (wrong for a damaged file, and unsafe for a file from a bucket)."""
    text = str(exc)
    if isinstance(exc, EOFError) or (not text.strip() and "pickle" in type(exc).__name__.lower()):
        return "the file is empty or cut short"
    if "WeightsUnpickler error:" in text:  # weights_only refused what the pickle holds
        detail = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
        detail = " ".join(detail.split()) or "unsupported content"
        return f"not a PyTorch file of plain tensors and numbers ({detail})"
    if "PytorchStreamReader" in text:  # the zip container is damaged (truncated, overwritten)
        return "damaged or truncated (" + " ".join(text.split(". ")[0].split()) + ")"
    lines = [ln for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
    return f"{type(exc).__name__}: {' '.join(lines[0].split()) if lines else 'unreadable'}"


def torch_load(path: str | Path, what: str, map_location: Any = "cpu", shown: str | None = None) -> Any:
    """``torch.load(path, weights_only=True)``; a file that does not load is one ``CheckpointError`` line
    naming ``shown`` (default: ``path``) and ``what`` it should have been."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle and zip errors have many types; all mean the same here
        raise CheckpointError(f"{what} {shown or path} is unreadable: {load_problem(exc)}") from exc


def load_checkpoint(path: str | Path | None, config: SearchConfig, shown: str | None = None) -> SearchState | None:
    """The state saved at ``path``, None if there is no file; CheckpointError if it cannot be resumed.
    ``shown``: the name the messages give the file (the real file when ``path`` is a local copy)."""
    if path is None or not Path(path).exists():
        return None
    remedy = "remove it to start the trial afresh"
    name = shown or str(path)
    try:
        plain = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle errors have many types; all mean the same here
        raise CheckpointError(f"checkpoint {name} is unreadable or not a {FORMAT} file (written by an older hwnas, "
                              f"or not a checkpoint): {load_problem(exc)}; {remedy}") from exc
    found = plain.get("format") if isinstance(plain, dict) else None
    if found != FORMAT:
        raise CheckpointError(f"checkpoint {name} has format {found!r}, this hwnas reads {FORMAT!r} "
                              f"(written by another hwnas version); {remedy}")
    # a key the saved config lacks was added by a later hwnas: it ran with that key's default, or with
    # the behaviour the key was introduced to keep selectable (_BEFORE_KEY)
    defaults = {**SearchConfig().to_dict(), **_BEFORE_KEY}
    saved = _identity({**defaults, **plain.get("config", {})})
    want = _identity(config.to_dict())
    if saved != want:
        diff = sorted(k for k in set(saved) | set(want) if saved.get(k) != want.get(k))
        raise CheckpointError(f"checkpoint {name} was written by another config (differs in: {', '.join(diff)}); "
                              "remove it or run with the config that wrote it")
    try:
        return SearchState.from_plain(plain)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {name} is malformed ({type(exc).__name__}: {exc}); {remedy}") from exc


def _identity(config: dict) -> dict:
    """The keys that decide what a search learns, ``arch_step`` resolved (auto = joint with arch_data=same)."""
    out = {k: v for k, v in config.items() if k not in _IGNORED_KEYS}
    out["arch_step"] = resolved_arch_step(out["arch_step"], out["arch_data"])
    return out
