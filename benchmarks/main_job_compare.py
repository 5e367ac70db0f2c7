"""README's main job on an older commit and on this tree, side by side in one run (issue 12).

Checks out REF as a temporary ``git worktree``, runs ``hwnas search`` there with this venv's Python
(``PYTHONPATH`` = the worktree, so its modules win over the editable install), then the same command on
this working tree (uncommitted changes included: the header says so), each with its own results folder,
one after the other so neither slows the other. Prints both wall times, the machine's load before each,
and both Pareto fronts (lambda_time, accuracy, DRAM time/energy). The worktree is removed at the end.

Ray binds the host's address unless confined: run it as the tests run Ray,

  shared/tools/loopback-only env RAY_AUTH_MODE=token .venv/bin/python benchmarks/main_job_compare.py --ref HEAD~5
  ... main_job_compare.py --ref abc123 --set lambda_time=[0,2] max_epochs=2   # a shortened main job (say so)

Exit status: 0 when both runs finished with every trial completed, 1 otherwise (their outputs are kept
under --out for a look).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("main_job_compare")
ROOT = Path(__file__).resolve().parent.parent
FRONT_COLUMNS = ("lambda_time", "lambda_energy", "seed", "accuracy", "dram_time_us", "dram_energy_uj")
CLI = "from hwnas.cli import main; raise SystemExit(main())"


@dataclass(frozen=True)
class Run:
    label: str  # "ref <sha>" or "this <sha>[+dirty]"
    seconds: float
    returncode: int
    load: str  # /proc/loadavg before the run
    front: list[dict]  # pareto.parquet rows (FRONT_COLUMNS), [] if none was written


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run_main_job(label: str, tree: Path, out: Path, preset: str, sets: list[str], timeout_s: float) -> Run:
    """``hwnas search --preset PRESET --set ...`` with ``tree``'s code, results under ``out``."""
    cmd = [sys.executable, "-c", CLI, "search", "--preset", preset, "--storage", str(out), "--name", "compare"]
    if sets:
        cmd += ["--set", *sets]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    load = load_average()
    log.info("%s: %s", label, " ".join(cmd[3:]))
    t0 = time.perf_counter()
    with open(out.with_suffix(".log"), "w") as logfile:
        proc = subprocess.run(cmd, cwd=tree, env=env, stdout=logfile, stderr=subprocess.STDOUT, timeout=timeout_s)
    seconds = time.perf_counter() - t0
    return Run(label, seconds, proc.returncode, load, read_front(out / "compare" / "pareto.parquet"))


def read_front(path: Path) -> list[dict]:
    if not path.exists():
        return []
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    cols = [c for c in FRONT_COLUMNS if c in table.column_names]
    rows = table.select(cols).to_pylist()
    return sorted(rows, key=lambda r: (r.get("lambda_time") or 0.0, r.get("seed") or 0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="the older commit (any git revision: sha, tag, HEAD~3)")
    p.add_argument("--preset", default="fashion", help="hwnas search preset (default fashion: README's main job)")
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="overrides for both runs (a shortened main job; both sides get the same)")
    p.add_argument("--out", metavar="DIR", help="results and logs of both runs (default: a temporary folder, kept)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run before it is stopped")
    p.add_argument("--json", metavar="FILE", help="also write both runs as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    try:
        ref_sha = git("rev-parse", "--verify", f"{args.ref}^{{commit}}")
    except subprocess.CalledProcessError:
        p.error(f"--ref {args.ref!r} is not a commit of {ROOT}")
    head = git("rev-parse", "--short", "HEAD")
    dirty = "+uncommitted" if git("status", "--porcelain", "--untracked-files=no") else ""
    out = Path(args.out or tempfile.mkdtemp(prefix="hwnas-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    worktree = Path(tempfile.mkdtemp(prefix="hwnas-ref-")) / "tree"
    git("worktree", "add", "--detach", str(worktree), ref_sha)
    try:
        runs = [run_main_job(f"ref {ref_sha[:7]}", worktree, out / "ref", args.preset, args.sets, args.timeout),
                run_main_job(f"this {head}{dirty}", ROOT, out / "this", args.preset, args.sets, args.timeout)]
    finally:
        git("worktree", "remove", "--force", str(worktree))
    _print(runs, args.preset, args.sets)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in runs], indent=2) + "\n")
    log.info("outputs and logs under %s", out)
    return 0 if all(r.returncode == 0 and r.front for r in runs) else 1


def _print(runs: list[Run], preset: str, sets: list[str]) -> None:
    job = f"hwnas search --preset {preset}" + (f" --set {' '.join(sets)}  (SHORTENED)" if sets else "")
    print(f"main job: {job}")
    print(f"{'run':<24} {'wall s':>8} {'exit':>5} {'load before':>16}")
    for r in runs:
        print(f"{r.label:<24} {r.seconds:>8.0f} {r.returncode:>5} {r.load:>16}")
    if len(runs) == 2 and runs[1].seconds > 0:
        print(f"speed-up (ref / this): {runs[0].seconds / runs[1].seconds:.2f}x")
    for r in runs:
        print(f"\nfront of {r.label} ({len(r.front)} points)")
        print("  ".join(f"{c:>14}" for c in FRONT_COLUMNS))
        for row in r.front:
            print("  ".join(f"{_fmt(row.get(c)):>14}" for c in FRONT_COLUMNS))


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    raise SystemExit(main())
