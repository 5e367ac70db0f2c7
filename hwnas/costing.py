"""DRAM costs from Python, without searching: a searched network on a processor profile (``cost``), any ONNX
CNN (``cost_onnx``), one operator (``op_cost``), a whole front on other profiles (``recost``).

The model is computed in this process (``cost_models``): no Ray, no torch.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .errors import InputError, raises_typed

if TYPE_CHECKING:
    import pyarrow as pa

    from cost_models.network import NetworkCost
    from cost_models.onnx_graph import GraphCost
    from cost_models.profile import Profile
    from cost_models.traffic import OpCost
    from searchspace.config import SearchConfig
    from searchspace.genotype import Genotype

    from .experiment import Experiment

@dataclass(frozen=True)
class DeployedCost:
    """The DRAM cost of a searched network at its deployed geometry on one processor profile.

    Attributes:
        network: The cost model's result: totals (``dram_time_us``, ``dram_energy_uj``, ``dram_bytes``,
            ``dram_read_bytes``, ``dram_write_bytes``, ``compulsory_bytes``, ``dram_latencies``) and one row
            per kernel group (``rows``).
        layers: Cells of the costed (deployed) network.
        channels: Its initial channels.
        image_size: Its input image side, pixels.
        nodes: Intermediate nodes per cell.
        profile_source: The profile file the numbers came from.
    """

    network: NetworkCost
    layers: int
    channels: int
    image_size: int
    nodes: int
    profile_source: str

    @property
    def profile(self) -> str:
        """The processor profile's name."""
        return self.network.profile

    @property
    def batch(self) -> int:
        """The inference batch costed."""
        return self.network.batch

    @property
    def dram_time_us(self) -> float:
        """DRAM time of one inference of ``batch`` images, us."""
        return self.network.dram_time_us

    @property
    def dram_energy_uj(self) -> float:
        """DRAM energy of the same inference, uJ."""
        return self.network.dram_energy_uj

    @property
    def dram_bytes(self) -> int:
        """Bytes moved to and from DRAM by the same inference."""
        return self.network.dram_bytes

    def to_dict(self, rows: bool = False) -> dict[str, Any]:
        """The JSON object ``hwnas cost --genotype`` prints (with ``rows``: one row per kernel group)."""
        d = self.network.to_dict(rows=rows)
        d.update(profile_source=self.profile_source, layers=self.layers, channels=self.channels,
                 image_size=self.image_size, nodes=self.nodes)
        return d


def load_genotype_file(path: str | os.PathLike[str], flag: str = "--genotype") -> tuple[Genotype, dict[str, Any] | None]:
    """A genotype JSON file (``{"cells": ...}``) or a trial result JSON (``genotype``, optional ``config``;
    either may be a JSON string, as in ``trials.parquet`` rows). ``InputError`` naming the file (as
    ``flag`` names it) for anything else."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{flag} {os.fspath(path)}: no such file")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{flag} {os.fspath(path)}: not JSON ({exc})") from None
    return genotype_of(data, f"{flag} {os.fspath(path)}")


def genotype_of(data: Any, where: str) -> tuple[Genotype, dict[str, Any] | None]:
    """(genotype, its search config dict or None) from a Genotype, a genotype mapping or a trial row /
    record; ``InputError`` naming ``where`` for anything else."""
    from searchspace.genotype import Genotype

    if isinstance(data, Genotype):
        return data, None
    config = None
    if isinstance(data, Mapping) and "genotype" in data:
        config, data = data.get("config"), data["genotype"]
        try:
            data = json.loads(data) if isinstance(data, str) else data
            config = json.loads(config) if isinstance(config, str) else config
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: unreadable genotype or config ({exc})") from None
    if isinstance(data, Genotype):
        genotype = data
    else:
        if not isinstance(data, Mapping) or "cells" not in data:
            raise InputError(f"{where}: not a genotype: expected {{\"cells\": [...]}} or a trial result "
                             f"with \"genotype\" and \"config\"")
        try:
            genotype = Genotype.from_dict(data)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
    if not genotype.cells:
        raise InputError(f"{where}: not a genotype: no cells")
    if config is not None and not isinstance(config, Mapping):
        raise InputError(f"{where}: \"config\" must be an object, got {type(config).__name__}")
    return genotype, (dict(config) if config is not None else None)


def resolve_genotype(source: Any, flag: str = "genotype") -> tuple[Genotype, dict[str, Any] | None]:
    """``GenotypeSource`` -> (genotype, its search config dict or None)."""
    if isinstance(source, (str, os.PathLike)):
        return load_genotype_file(source, flag)
    return genotype_of(source, flag)


def network_config(genotype: Genotype, file_config: Mapping[str, Any] | None, profile: str | None,
                   overrides: Mapping[str, Any]) -> SearchConfig:
    """The search config a network is costed under: the trial's own (without one: the search defaults, one
    searched cell per genotype cell), then ``overrides``, then ``profile``."""
    from searchspace.config import SearchConfig

    values = dict(file_config) if file_config is not None else {"layers": len(genotype.cells)}
    values.update(overrides)
    if profile:
        values["profile"] = profile
    return SearchConfig.from_dict(values)


@raises_typed
def cost(genotype: Any, profile: str | None = None, **deploy: Any) -> DeployedCost:
    """The DRAM cost of a searched network's deployed form on a processor, every kernel it runs (stem,
    preprocessing, edge operators, node sums, concats, classifier); what ``hwnas cost --genotype`` prints.

    The network is the genotype mapped onto the deployed geometry: ``deploy_layers`` x ``deploy_channels`` at
    ``deploy_image_size``, batch ``cost_batch`` (each 0 = the evaluation network's, itself the search's),
    from the trial's config where ``genotype`` carries one, else the search defaults with one searched cell
    per genotype cell. This is the function a trial reports its ``dram_*`` columns with, so a trial's row on
    its own profile gives back its own columns.

    Args:
        genotype: A ``Genotype``, a genotype mapping ``{"cells": [...]}``, a ``trials.parquet`` row or trial
            record (``genotype`` + ``config``; e.g. what ``pick`` returns), or the path of a JSON file of
            either.
        profile: A built-in profile name (``mobile-npu``, ``edge-gpu``, ``h100``, ``h100-eager``,
            ``eyeriss``) or a profile TOML file; None = the config's (default ``mobile-npu``).
        **deploy: Search config keys overriding the trial's: ``deploy_layers``, ``deploy_channels``,
            ``deploy_image_size`` (pixels), ``cost_batch`` (images), or any other ``SearchConfig`` key.

    Returns:
        The cost and the geometry it is for.

    Raises:
        CostQueryError: An unknown profile (the message lists the known ones) or operator.
        ConfigError: A bad key or value, or a deployed network the layout cannot build.
        InputError: Not a genotype.

    Example:
        >>> c = hwnas.cost(exp.pick("knee"), profile="eyeriss", cost_batch=8)  # doctest: +SKIP
        >>> c.dram_time_us, c.dram_energy_uj  # doctest: +SKIP
    """
    from cost_models.network import derived_network_cost
    from cost_models.profile import load_profile
    from searchspace.layout import DEPLOYMENT, network_spec

    g, file_config = resolve_genotype(genotype)
    config = network_config(g, file_config, profile, deploy)
    prof = load_profile(config.profile)  # unknown profile: the error names the known ones
    spec = network_spec(config, DEPLOYMENT)
    return DeployedCost(derived_network_cost(g, config), layers=spec.layers, channels=spec.channels,
                        image_size=spec.image_size, nodes=spec.nodes, profile_source=prof.source)


@raises_typed
def cost_onnx(path: str | os.PathLike[str], profile: str, batch: int = 1) -> GraphCost:
    """The DRAM cost of any ONNX CNN on a processor profile (``hwnas cost --onnx``): Conv (depthwise,
    dilated, strided), Relu/Clip, BatchNormalization, pools, Gemm/MatMul, Add, Concat, Pad and the views,
    grouped into kernels as the profile fuses them.

    Args:
        path: The ``.onnx`` file, e.g. what ``export`` wrote.
        profile: A built-in profile name or a profile TOML file.
        batch: Images per inference (the graph's batch axis is set to it; every other shape must be static).

    Returns:
        Totals (``dram_time_us``, ``dram_energy_uj``, ``dram_bytes``, ``params``, ``macs``) and one row per
            kernel group (``rows``); ``to_dict(rows=...)`` is the command's JSON without ``onnx`` and
            ``profile_source``.

    Raises:
        CostQueryError: An unsupported op (named, with its node), a bad batch, an unknown profile.
    """
    from cost_models.onnx_graph import onnx_cost
    from cost_models.profile import load_profile

    return onnx_cost(os.fspath(path), load_profile(profile), batch)


@raises_typed
def op_cost(op: str, shape: tuple[int, int, int] | Sequence[int], profile: str, *, stride: int = 1, batch: int = 1,
            c_out: int | None = None) -> OpCost:
    """The DRAM cost of one operator of the registry on a (batch, C, H, W) input (``hwnas cost --op``).

    Args:
        op: An operator name (``sep_conv_3x3``, ``factorized_reduce``, ``classifier``, ...).
        shape: Its input (C, H, W).
        profile: A built-in profile name or a profile TOML file.
        stride: 1 or 2.
        batch: Images per inference.
        c_out: Output channels (None: C, as the searchable operators).

    Returns:
        Bytes read and written, compulsory bytes, DRAM streams and latencies, ``dram_time_us`` (us) and
            ``dram_energy_uj`` (uJ).
    """
    from cost_models.traffic import op_cost as model_op_cost

    c, h, w = (int(v) for v in shape)
    return model_op_cost(profile, op, c, h, w, stride=stride, batch=batch, c_out=c_out)


@raises_typed
def profiles() -> list[Profile]:
    """Every built-in processor profile, in name order (``summary()`` gives the key numbers)."""
    from cost_models.profile import list_profiles

    return list_profiles()


@raises_typed
def recost(front: Experiment | pa.Table | Iterable[Mapping[str, Any]], profiles: str | Sequence[str],
           **deploy: Any) -> pa.Table:
    """Every front point on every profile, without searching again (``hwnas pareto --recost``): each point's
    genotype at its config's deployed network, through the function the trial reported its own ``dram_*``
    columns with (its own profile gives them back exactly).

    Args:
        front: An ``Experiment`` (its front), a front Table or DataFrame, or rows (one row: one point).
        profiles: Profile names or files, a comma-separated string of them, or ``"all"`` (every built-in).
        **deploy: ``deploy_layers``, ``deploy_channels``, ``deploy_image_size``, ``cost_batch``: another
            deployed network or batch than the trials' (only these: what the search learnt stays).

    Returns:
        One row per (profile, point), points by DRAM energy on each profile: ``profile``, ``trial_id``,
            ``seed``, the lambdas, ``accuracy`` (± ``accuracy_std``), ``dram_time_us`` (us), ``dram_energy_uj``
            (uJ), ``dram_bytes``, ``rank`` (1 = cheapest) and the costed geometry. ``rank_correlations`` of it
            says whether the order holds between profiles.

    Raises:
        CostQueryError: An unknown profile (the message lists the known ones).
        InputError: A point without a genotype or whole config, or a key other than the four above.
    """
    from results.recost import RECOST_KEYS, recost as recost_table, recost_profiles

    from .experiment import front_rows

    spec = profiles if isinstance(profiles, str) else ",".join(profiles)
    names = recost_profiles(spec)  # an unknown profile fails before anything is costed
    bad = [k for k in deploy if k not in RECOST_KEYS]
    if bad:
        raise InputError(f"{', '.join(bad)}: a re-cost takes only {', '.join(RECOST_KEYS)} (the deployed network "
                         f"and its batch; the genotype and everything the search learnt stay the trial's)")
    return recost_table(front_rows(front), names, deploy)


@raises_typed
def rank_correlations(table: pa.Table) -> list[dict[str, Any]]:
    """For every pair of profiles of a ``recost`` table: the Spearman rank correlation of the points' DRAM
    energy (+1: the same order from cheapest to dearest; None with fewer than two points or all equal).

    Returns:
        ``[{"profile_a", "profile_b", "spearman_energy", "points"}, ...]``.
    """
    from results.recost import rank_correlations as correlations

    return correlations(table)


__all__ = ["DeployedCost", "cost", "cost_onnx", "load_genotype_file", "op_cost", "profiles", "rank_correlations",
           "recost"]
