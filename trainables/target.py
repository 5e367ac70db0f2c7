"""Step 5: the target network, built from a genotype by the same cell code as the supernet, trained
from scratch, BN statistics re-estimated, tested on the test split.

``train_target`` is the whole protocol a trial applies to its genotype (the same for a random or a
hand-written genotype, which is what makes them comparable); ``target_epochs`` is its epoch loop as a
generator, which ``run_search`` drives to checkpoint between epochs.
"""
from __future__ import annotations

import time
from typing import Any, Iterator, NamedTuple

import torch
import torch.nn as nn

from searchspace.config import SearchConfig
from searchspace.genotype import Genotype
from searchspace.layout import eval_geometry, expand_genotype

from .cells import Network, derived_edge_spec
from .data import Datasets, batches, load_datasets
from .state import PhaseProgress
from .supernet import memory_format, search_device
from .train import accuracy, calibrate_bn, epoch_summary, set_lr, train_epoch

EVAL_MOMENTUM, EVAL_WEIGHT_DECAY, EVAL_LR_MIN = 0.9, 3e-4, 1e-4


class TargetRun(NamedTuple):
    accuracy: float  # test split, after BN re-estimation
    net: nn.Module  # the trained target network (eval_layers x eval_channels)


def target_geometry(config: SearchConfig) -> tuple[int, int]:
    """(layers, channels) of the target network: ``eval_layers`` / ``eval_channels``, 0 = the search's
    (``searchspace.layout.eval_geometry``, the one definition the cost model uses too)."""
    geo = eval_geometry(config)
    return geo.layers, geo.channels


def build_target(config: SearchConfig, genotype: Genotype,
                 device: torch.device | str = "cpu") -> tuple[Network, torch.optim.Optimizer]:
    """The untrained target network (seed ``config.seed * 1000 + 3``) and its SGD optimiser."""
    layers, channels = target_geometry(config)
    torch.manual_seed(config.seed * 1000 + 3)
    net = Network(derived_edge_spec(expand_genotype(genotype, layers), config.nodes), layers=layers,
                  channels=channels, nodes=config.nodes, in_channels=config.in_channels,
                  image_size=config.image_size, num_classes=config.num_classes,
                  stem_multiplier=config.stem_multiplier, affine=True)
    device = torch.device(device)
    net = net.to(device, memory_format=memory_format(config, device))
    opt = torch.optim.SGD(net.parameters(), config.eval_lr, momentum=EVAL_MOMENTUM, weight_decay=EVAL_WEIGHT_DECAY,
                          foreach=True)
    return net, opt


def target_epochs(config: SearchConfig, net: nn.Module, opt: torch.optim.Optimizer, data: Datasets,
                  gen: torch.Generator, progress: PhaseProgress) -> Iterator[tuple[PhaseProgress, dict[str, Any]]]:
    """Train from ``progress`` (restored into ``net``/``opt`` here) to ``eval_epochs`` on ``eval_train``."""
    if progress.started:
        net.load_state_dict(progress.net)
        opt.load_state_dict(progress.w_opt)
    while progress.epoch < config.eval_epochs:
        t0 = time.perf_counter()
        epoch = progress.epoch
        lr = set_lr(opt, epoch, config.eval_epochs, config.eval_lr, EVAL_LR_MIN)
        m = train_epoch(net, opt, batches(data.eval_train, config.eval_batch_size, gen, config.augment),
                        config.grad_clip)
        metrics = {"phase": "eval", "epoch": epoch + 1, **epoch_summary(m, "eval", epoch + 1), "lr": lr}
        if config.measures_val(epoch + 1, last=epoch + 1 == config.eval_epochs):
            # BN re-estimated, then val: the last epoch's (and val_every's); the test accuracy recalibrates anyway
            calibrate_bn(net, data.eval_train.x[:config.bn_calibration_images])
            metrics["val_acc"] = accuracy(net, data.val.x, data.val.y)
        progress = PhaseProgress(epoch=epoch + 1, seconds=progress.seconds + time.perf_counter() - t0,
                                 net=net.state_dict(), w_opt=opt.state_dict())
        yield progress, metrics


def final_accuracy(config: SearchConfig, net: nn.Module, data: Datasets) -> float:
    """BN statistics re-estimated on the training images (also after a resume at the very end), then test."""
    calibrate_bn(net, data.eval_train.x[:config.bn_calibration_images])
    return accuracy(net, data.test.x, data.test.y)


def train_target(config: SearchConfig, genotype: Genotype, data: Datasets | None = None, *,
                 device: torch.device | str | None = None, generator: torch.Generator | None = None) -> TargetRun:
    """Train ``genotype``'s target network from scratch as a trial does and test it.

    ``data``: default ``load_datasets(config)`` on ``device`` (default ``config.device``). ``generator``:
    the data-order stream, default seeded with ``config.seed`` (inside a trial it continues the search's).
    """
    if data is None:
        data = load_datasets(config, device or search_device(config))
    device = data.train.x.device
    gen = generator if generator is not None else torch.Generator().manual_seed(config.seed)
    net, opt = build_target(config, genotype, device)
    for _ in target_epochs(config, net, opt, data, gen, PhaseProgress()):
        pass
    return TargetRun(final_accuracy(config, net, data), net)
