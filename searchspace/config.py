"""Search configuration: one frozen dataclass, validated once at the edge (CLI, file, Tune dict).

Each field says why it exists. ``SearchConfig.from_dict`` is the only way in from untyped data: an
unknown key or a bad value is a ``ConfigError`` that names the key and the value.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message names both."""


@dataclass(frozen=True)
class SearchConfig:
    # --- what the trial is about: the top-level keys of every result row
    seed: int = 0  # seeds torch/numpy/data order; same seed + config = same genotype on CPU
    dataset: str = "fashion"  # fashion (Debian package, offline) | cifar10 (torchvision folder) | synthetic (tests)
    profile: str = "mobile-npu"  # processor profile name or file whose DRAM costs enter the loss
    lambda_time: float = 0.0  # weight of the normalised expected DRAM time in the search loss
    lambda_energy: float = 0.0  # weight of the normalised expected DRAM energy in the search loss

    # --- data
    data_dir: str = ""  # dataset root; "" = the dataset's default (/usr/share/datasets/fashion-mnist)
    train_size: int = 2000  # training images used by the search (0 = all); small keeps CPU trials short
    val_size: int = 500  # held-out training images: supernet validation accuracy, arch data for arch_data=split
    test_size: int = 1000  # test-split images for the target network's accuracy (0 = all)
    augment: bool = True  # random crop + flip during training (on the device, no DataLoader workers)
    batch_size: int = 64  # search batch size (weights and architecture)

    # --- supernet geometry (DARTS: 8 cells, 16 channels, 4 nodes)
    layers: int = 5  # cells stacked; reduction cells at 1/3 and 2/3 of the depth
    channels: int = 8  # initial cell channels, doubled at each reduction
    nodes: int = 4  # intermediate nodes per cell (4 -> 14 edges)
    stem_multiplier: int = 3  # stem output = stem_multiplier * channels, as in DARTS
    share_alphas: bool = False  # False: one alpha set per cell (the patent's "edge j of cell i"); True: DARTS sharing

    # --- the two-stage search (seed 1)
    groups: str = "default"  # "default" (the patent's four groups), "learned:K" (clustered), or "name=op,op;name=op"
    representatives: tuple[str, ...] = ()  # stage-1 representative per group; () = each group's first operator
    arch_data: str = "same"  # "same": alpha and weights on the same batches (claim 6); "split": DARTS val split
    max_epochs: int = 8  # per stage, upper bound
    patience: int = 2  # a stage converged when every edge's argmax is unchanged for this many epochs
    warmup_epochs: int = 1  # weight-only epochs at the start of stage 1 (alphas frozen), as most DARTS variants
    lr: float = 0.05  # SGD weight learning rate (cosine-annealed to lr_min over max_epochs)
    lr_min: float = 0.001  # end of the cosine schedule
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 3e-4  # weights only
    grad_clip: float = 5.0  # weight gradient norm clip, as DARTS
    arch_lr: float = 3e-3  # Adam learning rate of the architecture parameters
    arch_weight_decay: float = 1e-3  # on alphas, as DARTS
    learned_warmup_steps: int = 20  # weight steps on a uniform supernet before clustering for groups=learned:K

    # --- derivation and the target network
    max_skip_per_cell: int = 2  # cap on skip_connects per derived cell (-1 = no cap); cost terms favour skips
    eval_epochs: int = 3  # target network trained from scratch for this many epochs (fixed short protocol)
    eval_layers: int = 0  # 0 = same as layers
    eval_channels: int = 0  # 0 = same as channels
    eval_lr: float = 0.05  # SGD, cosine to 0
    eval_batch_size: int = 64
    eval_train_size: int = 0  # training images of the target network (0 = the search's); it is far cheaper
    # than the supernet, so a short protocol can afford more data than the search
    bn_calibration_images: int = 512  # BN statistics re-estimated on this many training images before
    # every accuracy measurement: short schedules leave running averages lagging the weights

    # --- cost model
    cost_batch: int = 1  # inference batch size the DRAM costs are computed for

    # --- execution
    device: str = "auto"  # auto | cpu | cuda
    fast: bool = True  # speed-ups that keep the maths: one ReLU per edge input shared by its candidates

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["representatives"] = list(self.representatives)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SearchConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"unknown config key {key!r} (value {value!r}); known keys: {', '.join(known)}")
            kwargs[key] = _coerce(key, value, known[key])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "SearchConfig":
        return self.from_dict({**self.to_dict(), **changes})

    @property
    def in_channels(self) -> int:
        return 3 if self.dataset == "cifar10" else 1

    @property
    def image_size(self) -> int:
        # Fashion-MNIST is zero-padded 28 -> 32 so two reductions stay even (32 -> 16 -> 8); the synthetic
        # test set is 16x16, which keeps CPU tests 4x cheaper
        return 16 if self.dataset == "synthetic" else 32

    @property
    def num_classes(self) -> int:
        return 10


def _coerce(key: str, value: Any, f: dataclasses.Field) -> Any:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [v for v in value.split(",") if v] if value else []
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key!r}: cannot use {value!r} as {type(default).__name__}") from None


def _validate(c: SearchConfig) -> None:
    def bad(key: str, why: str) -> None:
        raise ConfigError(f"config key {key!r} = {getattr(c, key)!r}: {why}")

    if c.dataset not in ("fashion", "cifar10", "synthetic"):
        bad("dataset", "expected fashion, cifar10 or synthetic")
    for key in ("lambda_time", "lambda_energy"):
        v = getattr(c, key)
        if not math.isfinite(v) or v < 0:
            bad(key, "must be a finite number >= 0")
    for key in ("layers", "channels", "nodes", "stem_multiplier", "batch_size", "max_epochs", "patience",
                "eval_batch_size", "cost_batch"):
        if getattr(c, key) < 1:
            bad(key, "must be >= 1")
    for key in ("train_size", "val_size", "test_size", "warmup_epochs", "eval_epochs", "eval_layers",
                "eval_channels", "learned_warmup_steps", "eval_train_size", "bn_calibration_images"):
        if getattr(c, key) < 0:
            bad(key, "must be >= 0")
    if c.max_skip_per_cell < -1:
        bad("max_skip_per_cell", "must be >= 0, or -1 for no cap")
    for key in ("lr", "lr_min", "arch_lr", "eval_lr"):
        if not getattr(c, key) > 0:
            bad(key, "must be > 0")
    if c.arch_data not in ("same", "split"):
        bad("arch_data", "expected 'same' or 'split'")
    if c.arch_data == "split" and c.val_size < c.batch_size:
        bad("val_size", f"arch_data=split needs at least one batch ({c.batch_size}) of validation images")
    if c.device not in ("auto", "cpu", "cuda"):
        bad("device", "expected auto, cpu or cuda")
    from .groups import parse_groups  # torch-importing module; loaded only when a config is built
    from .ops import get_op

    try:
        parse_groups(c.groups)
    except ValueError as exc:
        bad("groups", str(exc))
    for op in c.representatives:
        try:
            get_op(op)
        except ValueError as exc:
            bad("representatives", str(exc))
    if not c.profile:
        bad("profile", "must name a processor profile or a profile file")


# Presets: the named starting points of `hwnas trial` / `hwnas search` (overridden by --set).
PRESETS: dict[str, dict[str, Any]] = {
    # about a minute on 2 CPU cores: tiny real Fashion-MNIST subset, tiny supernet, short stages
    "smoke": dict(dataset="fashion", train_size=256, val_size=128, test_size=256, batch_size=32, layers=3,
                  channels=4, max_epochs=2, patience=1, warmup_epochs=0, eval_epochs=1, eval_batch_size=64),
    # a real but short Fashion-MNIST search that a 2-core CPU machine finishes in a few minutes per trial
    "fashion": dict(dataset="fashion", train_size=1000, val_size=500, test_size=1000, batch_size=50,
                    layers=3, channels=6, max_epochs=4, patience=2, warmup_epochs=1, eval_epochs=3, eval_lr=0.1,
                    eval_train_size=2000),
    # DARTS geometry on CIFAR-10 (a GPU per trial)
    "cifar10": dict(dataset="cifar10", train_size=0, val_size=5000, test_size=0, batch_size=64, layers=8,
                    channels=16, max_epochs=25, patience=3, warmup_epochs=5, eval_epochs=20, eval_batch_size=128,
                    lr=0.025, arch_lr=6e-4),
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``--set key=value`` pairs -> dict; values stay strings (typed by ``from_dict``) unless JSON."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out
