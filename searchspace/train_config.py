"""Full-scale training of a picked genotype (``hwnas train``): one frozen dataclass, validated by the same
schema as the search config (``searchspace.schema.setting``), and its presets.

The network's geometry (nodes, stem multiplier) comes from the experiment the genotype was searched in;
this config says how big the trained network is and how it is trained (DARTS's ``train.py`` protocol
with cutout, drop-path and the auxiliary head as keys).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .schema import ConfigError, build, check, setting


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = setting("fashion", "fashion (Debian package, offline, padded to 32x32), cifar10 (torchvision "
                           "folder in data_dir) or synthetic (tests)", choices=("fashion", "cifar10", "synthetic"))
    data_dir: str = setting("", "dataset root; \"\" = the dataset's default")
    train_size: int = setting(0, "training images (0 = the whole training split)", ge=0)
    test_size: int = setting(0, "test images for the accuracy (0 = the whole test split)", ge=0)
    layers: int = setting(0, "cells of the trained network; 0 = the experiment's eval_layers (or layers)", ge=0)
    channels: int = setting(0, "initial channels of the trained network; 0 = the experiment's eval_channels "
                            "(or channels)", ge=0)
    epochs: int = setting(5, "training epochs (checkpointed after each; rerun the command to resume)", ge=1)
    batch_size: int = setting(96, "training batch size", ge=1)
    lr: float = setting(0.025, "SGD learning rate, cosine-annealed to lr_min over the epochs", gt=0)
    lr_min: float = setting(0.0, "end of the cosine schedule", ge=0)
    momentum: float = setting(0.9, "SGD momentum", ge=0)
    weight_decay: float = setting(3e-4, "SGD weight decay", ge=0)
    grad_clip: float = setting(5.0, "gradient norm clip", gt=0)
    augment: bool = setting(True, "random 4-pixel crop + horizontal flip")
    cutout: int = setting(0, "cutout square side in pixels (DARTS: 16); 0 = off", ge=0)
    drop_path_prob: float = setting(0.0, "drop-path probability of every non-identity edge, ramped linearly "
                                    "from 0 over the epochs (DARTS: 0.2)", ge=0)
    auxiliary: bool = setting(False, "auxiliary classifier head after the second reduction cell (training only)")
    auxiliary_weight: float = setting(0.4, "weight of the auxiliary head's loss", ge=0)
    seed: int = setting(0, "seeds the initial weights and the data order")
    device: str = setting("auto", "auto (cuda when present), cpu or cuda", choices=("auto", "cpu", "cuda"))
    profile: str = setting("", "processor profile of metrics.json's DRAM cost; \"\" = the experiment's")
    cost_batch: int = setting(0, "inference batch of metrics.json's DRAM cost; 0 = the experiment's", ge=0)

    def __post_init__(self) -> None:
        check(self)

    def validate(self) -> None:
        if self.drop_path_prob >= 1:
            raise ConfigError(f"config key 'drop_path_prob' = {self.drop_path_prob!r}: must be below 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        return build(cls, data)


TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    # a quick CPU run on real Fashion-MNIST: minutes per epoch on 2 cores
    "fashion": dict(dataset="fashion", train_size=10000, test_size=10000, layers=5, channels=12, epochs=5,
                    batch_size=64, lr=0.05, lr_min=1e-4),
    # DARTS's CIFAR-10 evaluation protocol (train.py): 20 cells, 36 channels, 600 epochs, one GPU
    "cifar10-darts": dict(dataset="cifar10", layers=20, channels=36, epochs=600, batch_size=96, lr=0.025,
                          lr_min=0.0, momentum=0.9, weight_decay=3e-4, grad_clip=5.0, cutout=16,
                          drop_path_prob=0.2, auxiliary=True, auxiliary_weight=0.4),
}


def train_preset(name: str) -> dict[str, Any]:
    if name not in TRAIN_PRESETS:
        raise ConfigError(f"unknown train preset {name!r}; presets: {', '.join(TRAIN_PRESETS)}")
    return dict(TRAIN_PRESETS[name])
