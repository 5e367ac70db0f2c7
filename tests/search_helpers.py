"""Small configs and cost tables shared by the search-core tests (CPU, seconds each)."""
from trainables import SearchConfig

TINY = dict(dataset="synthetic", train_size=64, val_size=32, test_size=32, batch_size=16, layers=3, channels=4,
            max_epochs=2, patience=1, warmup_epochs=0, eval_epochs=1, eval_batch_size=32, augment=False)


def tiny(**overrides) -> SearchConfig:
    return SearchConfig.from_dict({**TINY, **overrides})


class Killed(Exception):
    """Raised by a ``kill_at`` callback: the search stops there, as a killed trial would."""


def kill_at(phase: str, epoch: int, eval_seed: int | None = None):
    """A ``run_search`` report callback that raises ``Killed`` once ``phase``'s ``epoch`` is reported (its
    checkpoint is already written: the next run resumes after that epoch); ``eval_seed``: only that training
    seed's epoch of the eval phase."""
    def report(metrics) -> None:
        if (metrics["phase"], metrics["epoch"]) == (phase, epoch) and eval_seed in (None, metrics.get("eval_seed")):
            raise Killed
    return report


def pools_cheap(op: str, c: int, h: int, stride: int) -> tuple[float, float]:
    """A cost table where pools and skip are ~100x cheaper than convolutions (time_us, energy_uj)."""
    base = c * h * h / stride
    factor = 1.0 if op in ("max_pool_3x3", "avg_pool_3x3", "skip_connect") else 100.0
    return factor * base * 1e-3, factor * base * 1e-4
