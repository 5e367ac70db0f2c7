"""Full-scale training of a genotype (``hwnas train``): DARTS's evaluation protocol on the same cell code.

The network is ``trainables.cells.Network`` built from the genotype (mapped onto ``layers`` cells by
``expand_genotype``), so its state_dict is the deployable ``model.pt``. Training-only parts sit around it
without changing it: drop-path as forward hooks on the edge operators (identity edges never dropped, the
probability ramped from 0 as DARTS), the auxiliary head as a separate module fed by a hook on the second
reduction cell, cutout on the batches. Every epoch is checkpointed (``weights_only`` loadable) and a
rerun resumes after the last finished epoch with the same data stream.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from searchspace.config import SearchConfig
from searchspace.genotype import Genotype
from searchspace.layout import TRAINING, expand_genotype, network_spec
from searchspace.train_config import TrainConfig

from .cells import Network, derived_edge_spec
from .data import Datasets, batches, load_datasets
from .state import CheckpointError, torch_load
from .supernet import memory_format
from .train import accuracy

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "hwnas-train-1"


@dataclass(frozen=True)
class FullRun:
    net: Network  # the trained network (eval mode), model.pt's state_dict
    test_accuracy: float
    history: tuple[dict[str, float], ...]  # one record per epoch: epoch, lr, train_loss, train_acc, test_acc, seconds
    resumed_from: int  # epochs found in the checkpoint (0 = fresh start)


def build_network(search: SearchConfig, train: TrainConfig, genotype: Genotype) -> Network:
    """The untrained network of ``genotype`` at the train geometry (``network_spec(search, TRAINING, train)``:
    the train config's layers / channels, else the experiment's target network's), on ``train.dataset``'s
    images."""
    spec = network_spec(search, TRAINING, train)
    return Network(derived_edge_spec(expand_genotype(genotype, spec.layers), search.nodes), spec, affine=True)


def data_config(search: SearchConfig, train: TrainConfig) -> SearchConfig:
    """The search config with the train run's data keys (what ``load_datasets`` and the shapes read)."""
    return search.replace(dataset=train.dataset, data_dir=train.data_dir, train_size=train.train_size,
                          val_size=0, test_size=train.test_size, eval_train_size=0, arch_data="same")


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier, on the second reduction cell's output (N, C, H, H), H >= 2."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        # DARTS: AvgPool2d(5, stride=3) on 8x8 -> 2x2; adaptive pooling gives 2x2 at any input size
        self.features = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Conv2d(c, 128, 1, bias=False),
                                      nn.BatchNorm2d(128), nn.ReLU(), nn.Conv2d(128, 768, 2, bias=False),
                                      nn.BatchNorm2d(768), nn.ReLU())
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class TrainingWrapper:
    """Drop-path hooks and the auxiliary head's tap around a ``Network`` (its modules untouched)."""

    def __init__(self, net: Network, train: TrainConfig, num_classes: int):
        self.net, self.drop_prob, self.tapped = net, 0.0, None
        self.aux: AuxiliaryHead | None = None
        if train.drop_path_prob > 0:
            for cell in net.cells:
                for mixed in cell.edges.values():
                    if not isinstance(next(iter(mixed.ops.values())), nn.Identity):
                        mixed.register_forward_hook(self._drop_path)
        if train.auxiliary:
            i = 2 * len(net.cells) // 3
            c = net.plans[i].c * net.cells[i].nodes
            self.aux = AuxiliaryHead(c, num_classes).to(next(net.parameters()).device)
            net.cells[i].register_forward_hook(self._tap)

    def _drop_path(self, _module, _inputs, out: torch.Tensor) -> torch.Tensor:
        if not self.net.training or self.drop_prob <= 0:
            return out
        keep = 1.0 - self.drop_prob
        mask = torch.empty(out.shape[0], 1, 1, 1, device=out.device, dtype=out.dtype).bernoulli_(keep)
        return out * mask / keep

    def _tap(self, _module, _inputs, out: torch.Tensor) -> None:
        self.tapped = out if self.net.training else None

    def parameters(self):
        yield from self.net.parameters()
        if self.aux is not None:
            yield from self.aux.parameters()

    def loss(self, x: torch.Tensor, y: torch.Tensor, aux_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)  # (N, classes)
        loss = F.cross_entropy(logits, y)
        if self.aux is not None and self.tapped is not None:
            loss = loss + aux_weight * F.cross_entropy(self.aux(self.tapped), y)
        return loss, logits


def cutout(x: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a length x length square per image (centre uniform over the image, clipped at the borders)."""
    n, _, h, w = x.shape
    centre = torch.randint(0, h * w, (n,), generator=generator).to(x.device)
    cy, cx = (centre // w).view(n, 1, 1), (centre % w).view(n, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (rows >= cy - length // 2) & (rows < cy + length // 2) & (cols >= cx - length // 2) & (cols < cx + length // 2)
    return x * (~hole).unsqueeze(1).to(x.dtype)  # (N, 1, H, W) mask broadcast over channels


def _device(train: TrainConfig) -> torch.device:
    if train.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but torch sees no GPU; use device=cpu or auto")
    return torch.device("cuda" if train.device == "cuda" or train.device == "auto" and torch.cuda.is_available()
                        else "cpu")


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous epoch's checkpoint


def train_full(search: SearchConfig, train: TrainConfig, genotype: Genotype, *, checkpoint: Path | None = None,
               data: Datasets | None = None, on_epoch: Callable[[dict[str, float]], None] | None = None) -> FullRun:
    """Train ``genotype``'s network with ``train``'s protocol; resume from ``checkpoint`` when it exists."""
    device = _device(train)
    dcfg = data_config(search, train)
    data = data or load_datasets(dcfg, device)
    torch.manual_seed(train.seed)
    net = build_network(search, train, genotype).to(device, memory_format=memory_format(search, device))
    wrap = TrainingWrapper(net, train, dcfg.num_classes)
    opt = torch.optim.SGD(list(wrap.parameters()), train.lr, momentum=train.momentum,
                          weight_decay=train.weight_decay)
    gen = torch.Generator().manual_seed(train.seed)
    history: list[dict[str, float]] = []
    identity = {"genotype": genotype.to_json(), "train": train.to_dict(), "nodes": search.nodes,
                "stem_multiplier": search.stem_multiplier}
    if checkpoint is not None and checkpoint.exists():
        remedy = "use another --out or delete it to start again"
        state = torch_load(checkpoint, "train checkpoint", map_location=device)
        found = state.get("format") if isinstance(state, dict) else None
        if found != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{checkpoint}: not an hwnas train checkpoint (format {found!r}); {remedy}")
        try:
            same = {k: state["identity"][k] for k in ("genotype", "nodes", "stem_multiplier")} == \
                {k: identity[k] for k in ("genotype", "nodes", "stem_multiplier")}
            free = ("epochs", "profile", "cost_batch", "device")  # may change between runs: training is the same
            old = {k: v for k, v in state["identity"]["train"].items() if k not in free}
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{checkpoint}: a malformed train checkpoint ({type(exc).__name__}: {exc}); "
                                  f"{remedy}") from None
        if not same or old != {k: v for k, v in train.to_dict().items() if k not in free}:
            raise ValueError(f"{checkpoint} belongs to another genotype or train config; use another --out or "
                             f"delete it to start again")
        try:
            net.load_state_dict(state["model"])
            if wrap.aux is not None:
                wrap.aux.load_state_dict(state["aux"])
            opt.load_state_dict(state["opt"])
            gen.set_state(state["generator"])
            history = list(state["history"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{checkpoint}: a malformed train checkpoint ({type(exc).__name__}: "
                                  f"{' '.join(str(exc).split())[:300]}); {remedy}") from None
        log.info("resuming from %s after epoch %d of %d", checkpoint, len(history), train.epochs)
    resumed = len(history)
    for epoch in range(resumed, train.epochs):
        t0 = time.perf_counter()
        lr = train.lr_min + 0.5 * (train.lr - train.lr_min) * (1 + math.cos(math.pi * epoch / train.epochs))
        for group in opt.param_groups:
            group["lr"] = lr
        wrap.drop_prob = train.drop_path_prob * epoch / train.epochs
        net.train()
        if wrap.aux is not None:
            wrap.aux.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for x, y in batches(data.train, train.batch_size, gen, train.augment):
            if train.cutout:
                x = cutout(x, train.cutout, gen)
            opt.zero_grad(set_to_none=True)
            loss, logits = wrap.loss(x, y, train.auxiliary_weight)
            loss.backward()
            nn.utils.clip_grad_norm_(list(wrap.parameters()), train.grad_clip)
            opt.step()
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.argmax(1) == y).sum()
            seen += y.shape[0]
        train_loss = float(loss_sum) / max(1, seen)
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"non-finite training loss in epoch {epoch + 1}: lower lr")
        record = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_acc": float(correct) / max(1, seen),
                  "test_acc": accuracy(net, data.test.x, data.test.y), "seconds": time.perf_counter() - t0}
        history.append(record)
        if checkpoint is not None:
            _save(checkpoint, {"format": CHECKPOINT_FORMAT, "identity": identity, "model": net.state_dict(),
                               "aux": wrap.aux.state_dict() if wrap.aux is not None else {},
                               "opt": opt.state_dict(), "generator": gen.get_state(), "history": history})
        if on_epoch is not None:
            on_epoch(record)
    net.eval()
    test_acc = history[-1]["test_acc"] if history else accuracy(net, data.test.x, data.test.y)
    return FullRun(net, test_acc, tuple(history), resumed)
