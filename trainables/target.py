"""Step 5: the target network, built from a genotype by the same cell code as the supernet, trained
from scratch, BN statistics re-estimated, tested on the test split.

``train_target`` is the whole protocol a trial applies to its genotype (the same for a random or a
hand-written genotype, which is what makes them comparable) under one training seed; ``target_epochs`` is
its epoch loop as a generator, which ``run_search`` drives to checkpoint between epochs, once per
training seed (``eval_seeds``). Training seed 0 is the single-seed protocol (init seed ``seed * 1000 + 3``,
the data order continuing whatever stream it is given); seed k >= 1 has its own init seed and data-order
stream, both derived from (``seed``, k) by ``eval_seed_streams``.
"""
from __future__ import annotations

import time
from typing import Any, Iterator, NamedTuple

import numpy as np
import torch
import torch.nn as nn

from searchspace.config import SearchConfig
from searchspace.genotype import Genotype
from searchspace.layout import EVALUATION, expand_genotype, network_spec

from .cells import Network, derived_edge_spec
from .data import Datasets, batches, load_datasets
from .state import PhaseProgress
from .supernet import memory_format, search_device
from .train import accuracy, calibrate_bn, epoch_summary, set_lr, train_epoch

EVAL_MOMENTUM, EVAL_WEIGHT_DECAY, EVAL_LR_MIN = 0.9, 3e-4, 1e-4


class TargetRun(NamedTuple):
    accuracy: float  # test split, after BN re-estimation
    net: nn.Module  # the trained target network (eval_layers x eval_channels)


def eval_seed_streams(config: SearchConfig, eval_seed: int) -> tuple[int, int | None]:
    """(init seed, data-order seed) of training seed ``eval_seed`` of the target network.

    Seed 0 is the single-seed protocol: init ``config.seed * 1000 + 3`` and no data seed of its own (None: it
    continues the stream it is given, inside a trial the search's). Seed k >= 1: both drawn from
    ``numpy.random.SeedSequence((config.seed, k))``: they depend on (seed, k) only (a hash of the pair, not an
    offset, so seed s's k-th stream is not seed s+1's (k-1)-th)."""
    if eval_seed < 0:
        raise ValueError(f"eval seed {eval_seed}: must be >= 0")
    if eval_seed == 0:
        return config.seed * 1000 + 3, None
    init, data = np.random.SeedSequence((config.seed, eval_seed)).generate_state(2)
    return int(init), int(data)


def build_target(config: SearchConfig, genotype: Genotype, device: torch.device | str = "cpu",
                 eval_seed: int = 0) -> tuple[Network, torch.optim.Optimizer]:
    """The untrained target network of training seed ``eval_seed`` (init seed: ``eval_seed_streams``; seed 0:
    ``config.seed * 1000 + 3``) and its SGD optimiser."""
    spec = network_spec(config, EVALUATION)  # eval_layers / eval_channels, 0 = the search's
    torch.manual_seed(eval_seed_streams(config, eval_seed)[0])
    net = Network(derived_edge_spec(expand_genotype(genotype, spec.layers), config.nodes), spec, affine=True)
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


def eval_generator(config: SearchConfig, eval_seed: int) -> torch.Generator | None:
    """The data-order stream of training seed ``eval_seed`` >= 1 (``eval_seed_streams``); None for seed 0,
    which continues the stream it is given."""
    data_seed = eval_seed_streams(config, eval_seed)[1]
    return None if data_seed is None else torch.Generator().manual_seed(data_seed)


def train_target(config: SearchConfig, genotype: Genotype, data: Datasets | None = None, *,
                 device: torch.device | str | None = None, generator: torch.Generator | None = None,
                 eval_seed: int = 0) -> TargetRun:
    """Train ``genotype``'s target network from scratch as a trial does under training seed ``eval_seed``
    and test it.

    ``data``: default ``load_datasets(config)`` on ``device`` (default ``config.device``). ``generator``:
    the data-order stream; default for seed 0 seeded with ``config.seed`` (inside a trial it continues the
    search's), for seed k >= 1 its own (``eval_generator``: the trial's seed k exactly).
    """
    if data is None:
        data = load_datasets(config, device or search_device(config))
    device = data.train.x.device
    gen = generator if generator is not None else eval_generator(config, eval_seed)
    gen = gen if gen is not None else torch.Generator().manual_seed(config.seed)
    net, opt = build_target(config, genotype, device, eval_seed)
    for _ in target_epochs(config, net, opt, data, gen, PhaseProgress()):
        pass
    return TargetRun(final_accuracy(config, net, data), net)
