"""The epoch loop of a search stage (claim 6): alternate architecture and weight updates until no
edge's strongest candidate has changed for ``patience`` epochs, or ``max_epochs``.

``search_epochs`` is a generator: it yields ``(progress, metrics)`` after every epoch so that the
caller (``run_search``) checkpoints and reports between epochs; resuming is passing back the last
``progress`` it yielded.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Any, Iterator

import torch

from searchspace.config import SearchConfig

from .arch import alpha_entropy, argmax_names
from .data import Datasets, batches
from .state import Names, PhaseProgress
from .supernet import supernet_accuracy
from .train import Supernet, epoch_summary, search_epoch, set_lr


def argmax(sn: Supernet) -> Names:
    """[set][edge] -> the strongest candidate's name."""
    return tuple(tuple(row) for row in argmax_names(sn.space, sn.alpha))


def restore(sn: Supernet, progress: PhaseProgress) -> None:
    """Load the snapshot of a stage interrupted mid-way into a freshly built supernet of that stage."""
    if not progress.started:
        return
    sn.net.load_state_dict(progress.net)
    sn.alpha.data.copy_(progress.alpha.to(sn.alpha.device))
    sn.w_opt.load_state_dict(progress.w_opt)
    sn.a_opt.load_state_dict(progress.a_opt)


def converged(config: SearchConfig, stage: int, progress: PhaseProgress) -> bool:
    warmup = config.warmup_epochs if stage == 1 else 0
    return progress.epoch >= config.max_epochs or (progress.epoch >= warmup and progress.stable >= config.patience)


def search_epochs(config: SearchConfig, stage: int, sn: Supernet, data: Datasets, gen: torch.Generator,
                  progress: PhaseProgress) -> Iterator[tuple[PhaseProgress, dict[str, Any]]]:
    """Train ``sn`` (already restored to ``progress``) epoch by epoch until the stage has converged.

    ``gen`` draws the data order and augmentation (and the val stream with ``arch_data: split``); the
    first ``warmup_epochs`` of stage 1 update the weights only.
    """
    phase = f"stage{stage}"
    warmup = config.warmup_epochs if stage == 1 else 0
    if progress.prev_argmax is None:
        progress = replace(progress, prev_argmax=argmax(sn))
    while not converged(config, stage, progress):
        t0 = time.perf_counter()
        epoch = progress.epoch
        lr = set_lr(sn.w_opt, epoch, config.max_epochs, config.lr, config.lr_min)
        update_arch = epoch >= warmup
        arch_stream = None
        if config.arch_data == "split":  # claim 6 uses the same batches; DARTS a held-out stream
            arch_stream = itertools.chain.from_iterable(
                batches(data.val, config.batch_size, gen, config.augment) for _ in itertools.count())
        m = search_epoch(sn, batches(data.train, config.batch_size, gen, config.augment), arch_stream,
                         update_arch, config.grad_clip)
        metrics = {"phase": phase, "epoch": epoch + 1, **epoch_summary(m, phase, epoch + 1), "lr": lr,
                   "val_acc": supernet_accuracy(config, sn, data),
                   "alpha_entropy": float(alpha_entropy(sn.alpha.detach(), sn.mask))}
        now = argmax(sn)
        stable = (progress.stable + 1 if now == progress.prev_argmax else 0) if update_arch else progress.stable
        metrics["stable_epochs"] = stable
        progress = PhaseProgress(epoch=epoch + 1, seconds=progress.seconds + time.perf_counter() - t0,
                                 stable=stable, prev_argmax=now, net=sn.net.state_dict(),
                                 alpha=sn.alpha.detach().cpu(), w_opt=sn.w_opt.state_dict(),
                                 a_opt=sn.a_opt.state_dict())
        yield progress, metrics
