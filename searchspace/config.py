"""Search configuration: one frozen dataclass, validated once at the edge (CLI, file, Tune dict).

Each field says why it exists and declares its bounds once (``searchspace.schema.setting``).
``SearchConfig.from_dict`` is the only way in from untyped data: an unknown key or a bad value is a
``ConfigError`` that names the key and the value.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

from .layout import DEPLOYMENT, EVALUATION, SEARCH, dataset_shape, geometry_problem, network_spec
from .schema import ConfigError, build, check, parse_set, setting


def _check_groups(spec: str) -> None:
    """an operator group spec"""
    from .groups import parse_groups  # numpy; loaded only when a config is built

    parse_groups(spec)  # ValueError naming the problem
    if "=" in spec:
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            name, _, ops = part.partition("=")
            if not name.strip():
                raise ValueError(f"group {part!r} has no name (expected name=op,op)")


def _check_operators(ops: tuple[str, ...]) -> None:
    """registered operator names"""
    from .ops import get_op

    for op in ops:
        get_op(op)  # ValueError: unknown operator


def _check_rate(rate: float) -> None:
    """a dropout rate below 1"""
    if rate >= 1:
        raise ValueError("must be below 1 (a rate of 1 drops every output)")


@dataclass(frozen=True)
class SearchConfig:
    # --- what the trial is about: the top-level keys of every result row
    seed: int = setting(0, "seeds torch/numpy/data order; same seed + config = same genotype on CPU")
    dataset: str = setting("fashion", "fashion (Debian package `dataset-fashion-mnist`, offline, padded to 32x32), "
                           "cifar10 (torchvision's folder layout in `data_dir`, never downloaded) or synthetic (tests)",
                           choices=("fashion", "cifar10", "synthetic"))
    profile: str = setting("mobile-npu", "processor profile name or file whose DRAM costs enter the loss", nonempty=True)
    lambda_time: float = setting(0.0, "weight of the normalised expected DRAM time in the search loss", ge=0)
    lambda_energy: float = setting(0.0, "weight of the normalised expected DRAM energy in the search loss", ge=0)

    # --- data
    data_dir: str = setting("", "dataset root; \"\" = the dataset's default (/usr/share/datasets/fashion-mnist)")
    train_size: int = setting(2000, "training images used by the search (0 = all); small keeps CPU trials short", ge=0)
    val_size: int = setting(500, "held-out training images: supernet validation accuracy, arch data for "
                            "arch_data=split", ge=0)
    test_size: int = setting(0, "test-split images for the target network's accuracy (0 = the whole test split: "
                             "10,000 images for fashion and cifar10; a subset adds its own sampling noise)", ge=0)
    augment: bool = setting(True, "random crop + flip during training (on the device, no DataLoader workers)")
    batch_size: int = setting(64, "search batch size (weights and architecture)", ge=1)

    # --- supernet geometry (DARTS: 8 cells, 16 channels, 4 nodes)
    layers: int = setting(5, "cells stacked; reduction cells at 1/3 and 2/3 of the depth", ge=1)
    channels: int = setting(8, "initial cell channels, doubled at each reduction", ge=1)
    nodes: int = setting(4, "intermediate nodes per cell (4 -> 14 edges)", ge=1)
    stem_multiplier: int = setting(3, "stem output = stem_multiplier * channels, as in DARTS", ge=1)
    share_alphas: bool = setting(False, "false: one alpha set per cell (the patent's \"edge j of cell i\"); "
                                 "true: DARTS sharing")
    supernet_pool_bn: bool = setting(False, "true: the supernet's pools carry DARTS's non-affine BN; false: the "
                                     "supernet runs pools as the derived network does (no BN), so the search "
                                     "weighs what the shipped cell trains like (benchmarks/search_quality.py: "
                                     "lambda-0 accuracy 0.77 vs 0.60 with the BN, random median 0.745)")

    # --- the two-stage search (the search patent, CN112561027A)
    groups: str = setting("default", "\"default\" (the patent's four groups), \"learned:K\" (clustered), or "
                          "\"name=op,op;name=op\"", check=_check_groups)
    representatives: tuple[str, ...] = setting((), "stage-1 representative per group; [] = each group's first "
                                               "operator", check=_check_operators)
    arch_data: str = setting("same", "\"same\": alpha and weights on the same batches (claim 6); \"split\": DARTS "
                             "val split", choices=("same", "split"))
    arch_step: str = setting("auto", "how alpha and the weights learn from one batch: \"joint\" = one forward and "
                             "backward gives both gradients, each set stepped by its own optimiser (claim 6: both "
                             "optimised on the same training data; one pass instead of two, docs/benchmarks.md \"Speed\"); "
                             "\"alternate\" = alpha stepped first, then the weights under the new alpha (DARTS's "
                             "first-order order, two passes per batch); \"auto\" = joint with arch_data=same, "
                             "alternate with split", choices=("auto", "joint", "alternate"))
    max_epochs: int = setting(8, "per stage, upper bound", ge=1)
    patience: int = setting(2, "a stage converged when every edge's argmax is unchanged for this many epochs", ge=1)
    warmup_epochs: int = setting(1, "weight-only epochs at the start of stage 1 (alphas frozen), as most DARTS "
                                 "variants", ge=0)
    lr: float = setting(0.05, "SGD weight learning rate (cosine-annealed to lr_min over max_epochs)", gt=0)
    lr_min: float = setting(0.001, "end of the cosine schedule", gt=0)
    momentum: float = setting(0.9, "SGD momentum", ge=0)
    weight_decay: float = setting(3e-4, "SGD weight decay, weights only", ge=0)
    grad_clip: float = setting(5.0, "weight gradient norm clip, as DARTS", gt=0)
    arch_lr: float = setting(3e-3, "Adam learning rate of the architecture parameters (arch_travel = 0)", gt=0)
    arch_travel: float = setting(0.0, "how far an alpha can move in a stage (nats): when > 0 each stage's Adam "
                                 "learning rate is arch_travel / the stage's architecture steps (epochs after "
                                 "its weight-only warm-up x batches per epoch), since Adam moves a parameter by "
                                 "about its learning rate per step; a short CPU stage then moves as far as "
                                 "DARTS's 50 epochs (3e-4 x 19,550 steps = 5.9). 0 = arch_lr as given",
                                 ge=0)
    arch_weight_decay: float = setting(1e-3, "Adam weight decay on the alphas, as DARTS", ge=0)
    learned_warmup_steps: int = setting(20, "weight steps on a uniform supernet before clustering for "
                                        "groups=learned:K", ge=0)

    # --- derivation and the target network
    max_skip_per_cell: int = setting(2, "cap on skip_connects per derived cell; cost terms favour skips. It always "
                                     "holds: an edge it excludes takes its next-strongest stage-1 group",
                                     ge=0, also={-1: "no cap"})
    derive_rank: str = setting("both", "how a node's incoming edges are ranked at derivation: \"both\" = stage-1 "
                               "group weight x stage-2 operator weight relative to uniform (K x p); \"stage1\" = "
                               "the group weight only (the rule before issue 16)", choices=("both", "stage1"))
    # cost budgets (issue 10): "at most X us on this processor", beside the lambda weights
    dram_time_budget_us: float = setting(0.0, "budget on the deployed network's DRAM time (us; 0 = off): the "
                                         "search loss adds budget_weight x penalty(C/B - 1) on the derived "
                                         "network's expected cost C, so a trial lands near its budget", ge=0)
    dram_energy_budget_uj: float = setting(0.0, "budget on the deployed network's DRAM energy (uJ; 0 = off), as "
                                           "dram_time_budget_us", ge=0)
    budget_penalty: str = setting("hinge", "form of the budget penalty: \"hinge\" = relu(C/B - 1) (zero under "
                                  "the budget); \"absolute\" = |C/B - 1| (TuNAS: pulls up to the budget too, and "
                                  "overshot it in benchmarks/budget_landing.py, where hinge stayed under)",
                                  choices=("hinge", "absolute"))
    budget_weight: float = setting(10.0, "weight of the budget penalty in the search loss (unit-free; C/B - 1 "
                                   "moves by a few % per operator change, so it is larger than a typical lambda; "
                                   "measured by benchmarks/budget_landing.py)", ge=0)
    stage2_start: str = setting("warmup", "how stage 2 starts each edge's operators: \"warmup\" = representative "
                                "kept, siblings fresh, then warmup_epochs weight-only epochs (chosen by "
                                "benchmarks/stage2_start.py); \"copy\" = every sibling initialised from the "
                                "representative where shapes allow (smaller kernels centred in larger ones); "
                                "\"representative\" = representative kept, siblings fresh, alphas at once (before "
                                "issue 16)", choices=("warmup", "copy", "representative"))
    # collapse guard (issue 10): a remedy, inside the search, for skip_connect winning every edge (trainables/guard.py)
    collapse_guard: str = setting("none", "remedy against skip collapse during the search: \"aux_skip\" (DARTS-: "
                                  "an identity beta*x on every stride-1 edge, beta 1 -> 0 over max_epochs), "
                                  "\"beta_decay\" (beta-DARTS: + w*mean logsumexp(alpha), w 0 -> beta_decay_weight), "
                                  "\"skip_dropout\" (P-DARTS: dropout on parameter-free candidates, rate "
                                  "skip_dropout_rate decaying to 0), \"early_stop\" (DARTS+: stage 1 ends when a "
                                  "normal cell's argmax holds more than max_skip_per_cell skips, 2 with no cap), "
                                  "\"none\"; chosen by benchmarks/collapse_guard.py",
                                  choices=("none", "aux_skip", "beta_decay", "skip_dropout", "early_stop"))
    beta_decay_weight: float = setting(2.0, "collapse_guard=beta_decay: the logsumexp penalty's final weight (it "
                                       "rises linearly from 0 over a stage's max_epochs, as in beta-DARTS)", ge=0)
    skip_dropout_rate: float = setting(0.3, "collapse_guard=skip_dropout: the first epoch's dropout rate on the "
                                       "parameter-free candidates' outputs, then linearly to 0 (P-DARTS)", ge=0,
                                       check=_check_rate)
    eval_epochs: int = setting(3, "target network trained from scratch for this many epochs (fixed short "
                               "protocol)", ge=0)
    eval_seeds: int = setting(1, "training seeds the target network is trained under (each from scratch, tested on "
                              "the same test images): the trial's accuracy is their mean, accuracy_std their sample "
                              "std. Seed 0 is the single-seed protocol (init seed seed*1000+3, continuing the "
                              "trial's data stream); seed k >= 1 draws its init and data order from (seed, k)", ge=1)
    eval_layers: int = setting(0, "target network cells; 0 = same as layers", ge=0)
    eval_channels: int = setting(0, "target network initial channels; 0 = same as channels", ge=0)
    eval_lr: float = setting(0.05, "target network SGD learning rate, cosine-annealed to 1e-4 over eval_epochs "
                             "(EVAL_LR_MIN, trainables/target.py)", gt=0)
    eval_batch_size: int = setting(64, "target network batch size", ge=1)
    eval_train_size: int = setting(0, "training images of the target network (0 = the search's); it is far "
                                   "cheaper than the supernet, so a short protocol can afford more data", ge=0)
    bn_calibration_images: int = setting(512, "BN statistics re-estimated on this many training images before "
                                         "every accuracy measurement: short schedules leave running averages "
                                         "lagging the weights", ge=0)

    # --- cost model
    cost_batch: int = setting(1, "inference batch size the DRAM costs are computed for", ge=1)
    deploy_layers: int = setting(0, "cells of the network the user ships, whose DRAM costs the loss weighs and "
                                 "every trial reports (each searched cell stands for the deployed cells of its "
                                 "segment); 0 = eval_layers", ge=0)
    deploy_channels: int = setting(0, "initial channels of the deployed network; 0 = eval_channels", ge=0)
    deploy_image_size: int = setting(0, "input image side of the deployed network; 0 = the dataset's (32, "
                                     "synthetic 16)", ge=0)

    # --- execution
    device: str = setting("auto", "where the trial runs: auto (cuda when present), cpu or cuda",
                          choices=("auto", "cpu", "cuda"))
    fast: bool = setting(True, "speed-ups that keep the maths: one ReLU per edge input shared by its candidates")
    compile: str = setting("auto", "torch.compile of the search step's forward and backward (one compile per stage): "
                           "auto = on CUDA only (on CPU a stage's compile outlasts the fashion preset's whole "
                           "stage, docs/benchmarks.md \"Speed\"), on, off; falls back to eager with a warning where it "
                           "cannot compile", choices=("auto", "on", "off"))
    channels_last: str = setting("auto", "memory format of the networks (weights and activations): auto = "
                                 "channels_last on CPU (its depthwise convs and pools are vectorised over "
                                 "channels: -21 % / -30 % per stage-1 / stage-2 step at the fashion preset, "
                                 "docs/benchmarks.md \"Speed\"), NCHW on CUDA (not measured there yet); on; off",
                                 choices=("auto", "on", "off"))
    val_every: int = setting(0, "supernet val accuracy (BN statistics re-estimated first: as long as a few "
                             "search steps) every N epochs of a stage; 0 = on a stage's last epoch only, which is "
                             "all the search and its record use", ge=0)

    def __post_init__(self) -> None:
        check(self)  # types and per-field bounds, then validate()

    def validate(self) -> None:
        """Rules that span fields (the per-field bounds are declared above)."""
        if self.arch_data == "split" and self.val_size < self.batch_size:
            raise ConfigError(f"config key 'val_size' = {self.val_size!r}: arch_data=split needs at least one "
                              f"batch ({self.batch_size}) of validation images")
        if self.arch_step == "joint" and self.arch_data == "split":
            raise ConfigError("config keys 'arch_step' = 'joint' and 'arch_data' = 'split': a joint step takes "
                              "both gradients from one batch, split draws alpha's from another (use arch_step="
                              "alternate or auto)")
        if self.warmup_epochs >= self.max_epochs:
            raise ConfigError(f"config keys 'warmup_epochs' = {self.warmup_epochs} and 'max_epochs' = "
                              f"{self.max_epochs}: the alphas would never move (warmup_epochs must be below "
                              f"max_epochs)")
        if self.patience > self.max_epochs:
            raise ConfigError(f"config keys 'patience' = {self.patience} and 'max_epochs' = {self.max_epochs}: a "
                              f"stage could never converge by patience (patience must be at most max_epochs)")
        self._check_eval_geometry()
        self._check_deploy_geometry()

    def _check_eval_geometry(self) -> None:
        """The evaluation network (eval_layers / eval_channels, 0 = the search's) must be buildable."""
        geo = network_spec(self, EVALUATION)
        problem = geometry_problem(network_spec(self, SEARCH), geo)
        if problem is not None:
            keys = [k for k in ("eval_layers", "eval_channels") if getattr(self, k)] + ["layers"]
            raise ConfigError(f"config keys {', '.join(f'{k}={getattr(self, k)!r}' for k in keys)}: the evaluation "
                              f"network ({geo.layers} cells, {geo.channels} channels) cannot be built from the "
                              f"{self.layers}-cell search: {problem}")

    def _check_deploy_geometry(self) -> None:
        """The deployed network (0s resolved: deploy -> eval -> search) must be buildable from the search."""
        geo = network_spec(self, DEPLOYMENT)
        problem = geometry_problem(network_spec(self, SEARCH), geo)
        if problem is not None:
            keys = [k for k in ("deploy_layers", "deploy_channels", "deploy_image_size", "eval_layers",
                                "eval_channels") if getattr(self, k)] + ["layers"]
            raise ConfigError(f"config keys {', '.join(f'{k}={getattr(self, k)!r}' for k in keys)}: the deployed "
                              f"network ({geo.layers} cells, {geo.channels} channels, {geo.image_size}x"
                              f"{geo.image_size}) cannot be built from the {self.layers}-cell search: {problem}")

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["representatives"] = list(self.representatives)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SearchConfig":
        return build(cls, data)

    def replace(self, **changes: Any) -> "SearchConfig":
        return self.from_dict({**self.to_dict(), **changes})

    @property
    def in_channels(self) -> int:
        return dataset_shape(self.dataset)[0]

    @property
    def image_size(self) -> int:
        """The dataset's image side as the networks see it (``searchspace.layout.DATASET_SHAPES``)."""
        return dataset_shape(self.dataset)[1]

    @property
    def num_classes(self) -> int:
        return dataset_shape(self.dataset)[2]

    @property
    def joint_arch_step(self) -> bool:
        """``arch_step`` resolved: True = one pass gives alpha's and the weights' gradients."""
        return resolved_arch_step(self.arch_step, self.arch_data) == "joint"

    def measures_val(self, epochs_done: int, last: bool) -> bool:
        """Whether a phase measures its val accuracy after ``epochs_done`` epochs: on its last epoch, and
        every ``val_every`` epochs when set."""
        return last or bool(self.val_every and epochs_done % self.val_every == 0)


def resolved_arch_step(arch_step: str, arch_data: str) -> str:
    """"joint" or "alternate": ``auto`` is joint with the same batches (arch_data=same), else alternate."""
    if arch_step == "auto":
        return "joint" if arch_data == "same" else "alternate"
    return arch_step


# Presets: the named starting points of `hwnas trial` / `hwnas search` (overridden by --set).
PRESETS: dict[str, dict[str, Any]] = {
    # about a minute on 2 CPU cores: tiny real Fashion-MNIST subset, tiny supernet, short stages
    "smoke": dict(dataset="fashion", train_size=256, val_size=128, test_size=256, batch_size=32, layers=3,
                  channels=4, max_epochs=2, patience=1, warmup_epochs=0, eval_epochs=1, eval_batch_size=64),
    # a real but short Fashion-MNIST search that a 2-core CPU machine finishes in a few minutes per trial.
    # Accuracy: the whole test split, mean of two training seeds (issue 21: a front point's accuracy with its
    # error bar). Costs: those of the network the user ships, DARTS's evaluation network (20 cells x C=36),
    # not the 3-cell x C=6 search proxy: the costs the loss weighs and the front shows are those of the
    # network the user ships, and at the proxy every genotype costs within a few % of every other.
    # Alphas: a stage has 3 x 20 architecture steps; at arch_lr 3e-3 they cannot travel past 0.18 and stage 1
    # ended with its entropy at 1.385 of ln 4 = 1.386; arch_travel 2 lets them commit where the gradient is
    # consistent (stage-1 entropy ~1.0 at lambda 8), not so far that the smallest lambda already saturates
    # (benchmarks/alpha_motion.py, docs/benchmarks.md "Alpha motion").
    "fashion": dict(dataset="fashion", train_size=1000, val_size=500, test_size=0, batch_size=50,
                    layers=3, channels=6, max_epochs=4, patience=2, warmup_epochs=1, eval_epochs=3, eval_lr=0.1,
                    eval_train_size=2000, eval_seeds=2, deploy_layers=20, deploy_channels=36, arch_travel=2.0),
    # DARTS geometry on CIFAR-10 (a GPU per trial); costs of DARTS's evaluation network (20 cells x C=36), the
    # network the user ships, as for fashion; accuracy over two training seeds on the whole test split
    "cifar10": dict(dataset="cifar10", train_size=0, val_size=5000, test_size=0, batch_size=64, layers=8,
                    channels=16, max_epochs=25, patience=3, warmup_epochs=5, eval_epochs=20, eval_batch_size=128,
                    lr=0.025, arch_lr=6e-4, eval_seeds=2, deploy_layers=20, deploy_channels=36),
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


__all__ = ["ConfigError", "PRESETS", "SearchConfig", "parse_set", "preset"]
