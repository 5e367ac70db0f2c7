"""The adaptive scan as a Ray Tune ``Searcher``: ``ScanPolicy`` (Ray-free) behind Tune's interface.

One Tuner runs the whole scan. Tune asks ``suggest`` whenever it could start a trial; the searcher
answers the policy's next point merged into the trial's search config, ``None`` (wait: nothing to run
until a result comes in) or ``Searcher.FINISHED``. ``on_trial_complete`` feeds each finished (or
failed) trial back. ``save``/``restore`` pickle the policy's state with Tune's experiment checkpoints,
so ``Tuner.restore`` continues the scan where it stopped; ``load_policy`` reads the newest such state
back from the experiment folder (the driver's way to the batches after a restored run).
"""
from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING, Any, Mapping

import pyarrow.fs as pafs
from ray.tune.search import Searcher

from results.scan_policy import DONE, ScanPolicy

if TYPE_CHECKING:
    from results.storage import Storage

log = logging.getLogger("hwnas.search")


class ScanSearcher(Searcher):
    """Suggests the adaptive scan's trials (module docstring). ``base`` is the search config every trial
    starts from; a suggestion sets its ``seed``, ``lambda_time``, ``lambda_energy`` and ``profile``."""

    def __init__(self, policy: ScanPolicy, base: Mapping[str, Any]) -> None:
        super().__init__(metric=None, mode=None)  # the policy reads the final record, not one metric
        self.policy = policy
        self.base = dict(base)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the param_space is the plain base config; nothing to take from it

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        point = self.policy.suggest(trial_id)
        if point == DONE:
            return Searcher.FINISHED
        if point is None:
            return None
        return {**self.base, **point}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.policy.complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"policy": self.policy.state(), "base": self.base}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            saved = pickle.load(f)
        self.policy = ScanPolicy.from_state(saved["policy"])
        self.base = saved["base"]
        log.info("scan: restored after %d batches, %d trials suggested, %d finished", len(self.policy.batches),
                 len(self.policy.assigned), len(self.policy.rows))


def load_policy(exp_dir: "Storage") -> ScanPolicy | None:
    """The newest searcher state Tune saved in the experiment folder (``searcher-state-<session>.pkl``,
    session names sort by time), or None if there is none."""
    pattern = Searcher.CKPT_FILE_TMPL.format("")
    fs = exp_dir.filesystem
    infos = fs.get_file_info(pafs.FileSelector(exp_dir.path(), allow_not_found=True))
    names = sorted(i.base_name for i in infos if i.type == pafs.FileType.File
                   and i.base_name.startswith(pattern.split(".")[0]) and i.base_name.endswith(".pkl"))
    if not names:
        return None
    with fs.open_input_file(exp_dir.path(names[-1])) as f:
        saved = pickle.loads(f.readall())
    return ScanPolicy.from_state(saved["policy"])
