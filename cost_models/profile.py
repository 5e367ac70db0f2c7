"""Processor profiles: the numbers the DRAM cost model needs, loaded from versioned TOML files.

A profile file (``cost_models/profiles/<name>.toml`` for the built-in ones, any path for a user's own)
holds one flat table of the fields of :class:`Profile`; every number in the built-in files carries its
source in a comment. Loading validates every field (type, sign, unknown keys) once, at the edge, so the
model itself never sees a bad number.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"


class CostQueryError(ValueError):
    """A cost query that cannot be answered (unknown profile or operator, impossible shape or stride).

    The message names the offending value and what would be accepted."""


@dataclass(frozen=True)
class Profile:
    """One processor as the DRAM model sees it. Units are in the field names."""

    # why: the key users and configs refer to the processor by (``SearchConfig.profile``)
    name: str
    # why: where the numbers came from (the TOML file), so a result row can be traced to its profile
    source: str
    # why: one line for `hwnas cost --list-profiles`
    description: str
    # why: the capacity that decides whether intermediates stay on chip and whether a layer must be tiled
    onchip_buffer_bytes: int
    # why: DRAM bytes / bandwidth is the transfer-time term (1 GB/s = 1e9 bytes/s = 1e3 bytes/us)
    dram_bandwidth_gbps: float
    # why: the fixed cost of a dependent DRAM access: paid once per kernel (its streams are in flight
    #      together) and once per further tile wave that cannot be prefetched (cost_models.traffic, 4)
    dram_latency_ns: float
    # why: DRAM moves whole bursts; every stream is rounded up to this granularity
    dram_burst_bytes: int
    # why: energy of reading one byte from DRAM (I/O + array), the read half of the energy term
    dram_read_pj_per_byte: float
    # why: energy of writing one byte to DRAM, the write half of the energy term
    dram_write_pj_per_byte: float
    # why: data type width of activations and weights (int8 = 1, fp16/bf16 = 2, fp32 = 4)
    bytes_per_element: int
    # why: True if a composite operator runs as one kernel whose intermediates may stay on chip;
    #      False if every primitive is its own kernel that reads and writes DRAM (eager frameworks)
    fused: bool
    # why: inference compilers fold BN into the preceding conv (a bias); eager PyTorch runs BN on its own
    fold_bn: bool = True
    # why: DRAM background power charged for the DRAM time (W x us = uJ); 0 = not modelled
    static_power_w: float = 0.0
    # why: what happens to a tensor between the kernel that writes it and the kernels that read it.
    #      "round-trip": written to DRAM and read back by every reader (an eager framework, or an
    #      accelerator that runs layer by layer); "resident": it stays on chip while the live set fits the
    #      buffer, and what does not fit spills, farthest next use first (an NPU compiler allocating its
    #      scratchpad; cost_models.residency). Default round-trip: a profile written before the key existed
    #      keeps its numbers.
    between_kernels: str = "round-trip"

    @property
    def resident(self) -> bool:
        """True if tensors stay on chip between kernels while they fit (``between_kernels = "resident"``)."""
        return self.between_kernels == "resident"

    @property
    def dram_bytes_per_us(self) -> float:
        return self.dram_bandwidth_gbps * 1e3

    def summary(self) -> dict[str, Any]:
        """The key numbers, as `hwnas cost --list-profiles` prints them."""
        return {
            "name": self.name,
            "description": self.description,
            "onchip_buffer_bytes": self.onchip_buffer_bytes,
            "dram_bandwidth_gbps": self.dram_bandwidth_gbps,
            "dram_latency_ns": self.dram_latency_ns,
            "dram_read_pj_per_byte": self.dram_read_pj_per_byte,
            "dram_write_pj_per_byte": self.dram_write_pj_per_byte,
            "bytes_per_element": self.bytes_per_element,
            "fused": self.fused,
            "fold_bn": self.fold_bn,
            "static_power_w": self.static_power_w,
            "between_kernels": self.between_kernels,
            "source": self.source,
        }


_FIELDS = {f.name: f for f in dataclasses.fields(Profile) if f.name != "source"}
_POSITIVE_INT = ("onchip_buffer_bytes", "dram_burst_bytes", "bytes_per_element")
_POSITIVE_FLOAT = ("dram_bandwidth_gbps",)
BETWEEN_KERNELS = ("round-trip", "resident")  # Profile.between_kernels
_NONNEG_FLOAT = ("dram_latency_ns", "dram_read_pj_per_byte", "dram_write_pj_per_byte", "static_power_w")


def _validate(data: dict[str, Any], source: str) -> Profile:
    def bad(key: str, why: str) -> CostQueryError:
        return CostQueryError(f"profile {source}: field {key!r} = {data.get(key)!r}: {why}")

    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise CostQueryError(f"profile {source}: unknown field(s) {', '.join(unknown)}; known fields: {', '.join(_FIELDS)}")
    missing = [k for k, f in _FIELDS.items()
               if k not in data and f.default is dataclasses.MISSING]
    if missing:
        raise CostQueryError(f"profile {source}: missing field(s) {', '.join(missing)}")
    for key in ("name", "description"):
        if not isinstance(data[key], str) or not data[key]:
            raise bad(key, "must be a non-empty string")
    for key in _POSITIVE_INT:
        v = data[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad(key, "must be an integer >= 1")
    for key in _POSITIVE_FLOAT + _NONNEG_FLOAT:
        if key not in data:
            continue
        v = data[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise bad(key, "must be a finite number")
        if key in _POSITIVE_FLOAT and v <= 0:
            raise bad(key, "must be > 0")
        if v < 0:
            raise bad(key, "must be >= 0")
        data[key] = float(v)
    for key in ("fused", "fold_bn"):
        if key in data and not isinstance(data[key], bool):
            raise bad(key, "must be true or false")
    if "between_kernels" in data:
        if data["between_kernels"] not in BETWEEN_KERNELS:
            raise bad("between_kernels", f"must be one of {', '.join(repr(v) for v in BETWEEN_KERNELS)}")
        if data["between_kernels"] == "resident" and not data["fused"]:
            raise bad("between_kernels", "\"resident\" needs fused = true (an unfused runtime writes every "
                      "primitive's output to memory: use \"round-trip\")")
    return Profile(source=source, **data)


def _builtin_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PROFILE_DIR.glob("*.toml"))}


def known_profile_names() -> list[str]:
    return list(_builtin_paths())


@functools.lru_cache(maxsize=64)
def _load_file(path: str, mtime_ns: int) -> Profile:  # mtime in the key: an edited file is reloaded
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CostQueryError(f"profile {path}: not valid TOML ({exc})") from None
    profile = _validate(dict(data), path)
    log.debug("loaded profile %s from %s", profile.name, path)
    return profile


def load_profile(name_or_path: str) -> Profile:
    """A built-in profile by name (``mobile-npu``) or a user's profile file by path (``./my.toml``).

    Raises :class:`CostQueryError` (a ``ValueError``) listing the known profiles for an unknown name."""
    if not isinstance(name_or_path, str) or not name_or_path:
        raise CostQueryError(f"profile must be a name or a file path, got {name_or_path!r}; "
                             f"known profiles: {', '.join(known_profile_names())}")
    builtin = _builtin_paths()
    if name_or_path in builtin:
        path = builtin[name_or_path]
    else:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise CostQueryError(f"unknown profile {name_or_path!r}: not a built-in profile and no such file; "
                                 f"known profiles: {', '.join(builtin)}")
    path = path.resolve()
    return _load_file(str(path), os.stat(path).st_mtime_ns)


def list_profiles() -> list[Profile]:
    """Every built-in profile, in name order."""
    return [load_profile(name) for name in _builtin_paths()]
