"""SIGINT and SIGTERM in the driver: both stop an experiment the same way, the way Ctrl-C always did.

A scheduler's preemption, ``kill``, ``timeout`` and ``docker stop`` send SIGTERM; a user sends SIGINT
(Ctrl-C) or closes the terminal. Either signal, while the Tuner runs, asks Tune to stop gracefully (Tune's
own stop handler, the one it installs for SIGUSR1): the running trials stop, Tune saves the experiment
state, ``run_experiment`` writes the tables (finished trials ``completed``, the others ``incomplete``) and
``hwnas search`` prints how to continue (``hwnas search --resume NAME``). A second signal stops at once
(``KeyboardInterrupt``); the driver still writes the rows it has. Before the Tuner runs (Ray starting, the
folder being claimed) a signal is a ``KeyboardInterrupt`` straight away: no trial has run.

Ray's ``ray.init`` installs its own SIGTERM handler (exit at once, with a stack dump), so ``install`` is
called again once Ray is up. Only the main thread can set handlers; elsewhere this does nothing.
Ray-free.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Any, Iterator

log = logging.getLogger("hwnas.search")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """The driver's SIGINT/SIGTERM handling during ``run_experiment`` (module docstring)."""

    def __init__(self) -> None:
        self.received: str | None = None  # name of the first signal ("SIGTERM"), None if none came
        self._fitting = False
        self._saved: dict[int, Any] = {}
        self._env: str | None = None
        self._active = False

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is not threading.main_thread():
            return self
        self._active = True
        # Tune's own SIGINT handler would replace ours for the run: ours forwards to Tune's stop instead
        self._env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        for sig in SIGNALS:
            self._saved[sig] = signal.getsignal(sig)
        self.install()
        return self

    def install(self) -> None:
        """(Re)install the handlers: after ``ray.init``, which sets its own for SIGTERM."""
        if self._active:
            for sig in SIGNALS:
                signal.signal(sig, self._handle)

    def __exit__(self, *exc: Any) -> None:
        if not self._active:
            return
        for sig, handler in self._saved.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if self._env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self._env
        self._active = False

    @contextlib.contextmanager
    def fitting(self) -> Iterator[None]:
        """Around ``tuner.fit()``: a first signal stops the Tuner gracefully."""
        self._fitting = True
        try:
            yield
        finally:
            self._fitting = False

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        first = self.received is None
        self.received = self.received or name
        tune_stop = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
        if first and self._fitting and callable(tune_stop):
            log.warning("%s received: stopping the trials and saving the experiment state (send it again to "
                        "stop at once)", name)
            tune_stop(signum, frame)
            return
        raise KeyboardInterrupt(name)
