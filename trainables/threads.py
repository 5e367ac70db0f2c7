"""Torch threads of one trial: one per CPU slot it holds, within the cores this process may use.

``hwnas trial`` (every usable core, or ``--threads``) and a Tune trial (the CPU slots Ray assigned it,
``orchestrator/trainable.py``) set them the same way. ``torch`` loads only in ``set_trial_threads``.
"""
from __future__ import annotations

import os


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else every core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def trial_threads(cpu_slots: float, cores: int) -> int:
    """Torch intra-op threads of one CPU trial holding ``cpu_slots`` CPUs of a ``cores``-core machine.

    One thread per slot, at least one and at most the cores: Tune runs trials only while their slots fit
    in the cores, so trials x threads fill the cores without oversubscription, and with one slot per trial
    (``cpus_per_trial: 1``, the presets) and trials >= cores every trial runs on one thread. A fractional
    slot (0.5) still gets a thread: torch cannot run on less.
    """
    if cores < 1:
        raise ValueError(f"cores must be at least 1, not {cores!r}")
    if not cpu_slots > 0:
        raise ValueError(f"a trial's CPU slots must be positive, not {cpu_slots!r}")
    return max(1, min(cores, int(cpu_slots)))


def set_trial_threads(threads: int) -> int:
    """``torch.set_num_threads(threads)``; returns it (logged by the caller)."""
    import torch

    torch.set_num_threads(threads)
    return threads
