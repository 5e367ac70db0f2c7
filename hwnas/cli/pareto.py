"""``hwnas pareto URI``: read an experiment's front (local or S3), print it, write it, plot it."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import pyarrow as pa

from searchspace.files import atomic_write, atomic_write_text, check_writable
from searchspace.schema import add_set_argument

from results.compare import compare_rows, render_compare, unique_labels
from results.dimensions import keys, of_kind
from results.plot import plot_compare
from results.recost import RECOST_KEYS
from results.schema import front_network_label
from results.tables import load_experiment

# the columns the table format shows (csv and json carry every column): the trial, its scan dimensions
# (results.dimensions), its accuracy and costs
TABLE_COLUMNS = ("trial_id", *keys(of_kind("seed", "profile", "weight")), "accuracy", "error",
                 "dram_time_us", "dram_energy_uj", "dram_bytes", "params", "skip_count")
# shown after TABLE_COLUMNS when some row of the front has a budget set (issue 10)
BUDGET_TABLE_COLUMNS = keys(of_kind("budget"))


def table_columns(rows: list[dict]) -> tuple[str, ...]:
    """TABLE_COLUMNS, plus the budget columns when any row ran with a budget."""
    if any(r.get(c) for r in rows for c in BUDGET_TABLE_COLUMNS):
        return TABLE_COLUMNS + BUDGET_TABLE_COLUMNS
    return TABLE_COLUMNS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pareto", help="print, write and plot an experiment's accuracy / DRAM-cost front",
        description="Read <storage>/<name>/pareto.parquet and trials.parquet (a local folder or s3://bucket/prefix/name), "
                    "print the front sorted by error, optionally write it and plot it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  hwnas pareto hwnas-results/fashion --plot front.png\n"
               "  hwnas pareto s3://bucket/runs/fashion --format csv --out front.csv\n"
               "  hwnas pareto hwnas-results/grid --compare hwnas-results/adaptive --plot compare.png\n"
               "  hwnas pareto hwnas-results/fashion --recost all\n"
               "  hwnas pareto hwnas-results/fashion --recost eyeriss,h100 --set cost_batch=16 --format csv")
    p.add_argument("uri", metavar="URI", help="the experiment folder, <storage>/<name>: a path or s3://bucket/prefix/name")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="table: aligned text with the main columns (default); csv / json: every column")
    p.add_argument("--out", metavar="FILE",
                   help="also write the front (with --compare: the comparison table) to FILE, in the format its "
                        "suffix names: .parquet, .csv, .json or .txt (the aligned table); any other suffix is refused")
    p.add_argument("--plot", metavar="FILE.png",
                   help="plot accuracy against DRAM time and against DRAM energy: every trial, the front highlighted")
    p.add_argument("--compare", metavar="URI2", nargs="+", action="extend", default=[],
                   help="also read these experiments: print one table of every experiment's trials, front sizes, "
                        "hypervolumes and largest gap, and with --plot draw all fronts on one plot")
    p.add_argument("--recost", metavar="PROFILE[,PROFILE...]|all",
                   help="re-cost every front point (its genotype, its config's deployed network and cost_batch) on "
                        "these processor profiles without searching again ('all': every built-in profile): one "
                        "table per profile and the Spearman rank correlation of the points' DRAM energy between "
                        "every pair of profiles")
    add_set_argument(p, example="deploy_layers=20 deploy_channels=36 cost_batch=16",
                     what=f"with --recost: cost another deployed network or batch than the trials' (keys: "
                          f"{', '.join(RECOST_KEYS)})")
    p.add_argument("--endpoint-url", metavar="URL",
                   help="S3-compatible endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
    p.set_defaults(func=main)


def render(front: pa.Table, fmt: str) -> str:
    rows = front.to_pylist()
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=front.column_names, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    columns = table_columns(rows)
    cells = [[accuracy_cell(r) if c == "accuracy" else _cell(r.get(c)) for c in columns] for r in rows]
    return f"{table_title(rows)}\n{aligned(columns, cells)}"


def table_title(rows: list[dict]) -> str:
    """The line above the front's table: which network the dram_* columns are for, what accuracy is."""
    return (f"DRAM costs of the {front_network_label(rows)}; accuracy: mean ± sample std over the trial's "
            f"training seeds (eval_seeds)")


def aligned(columns, cells: list[list[str]]) -> str:
    """Right-aligned columns under their names, two spaces apart."""
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"


def accuracy_cell(row: dict) -> str:
    """``0.7730 ± 0.0010``: the mean over training seeds ± their sample std; the mean alone with one seed."""
    acc, std = row.get("accuracy"), row.get("accuracy_std")
    if acc is None:
        return "-"
    return f"{acc:.4f}" if std is None else f"{acc:.4f} ± {std:.4f}"


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else (f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}")
    return str(v)


#: --out suffix -> format written
OUT_FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".txt": "table"}


def out_format(path: str) -> str:
    """The format ``--out PATH`` writes, from its suffix; ValueError for any other suffix (checked first)."""
    fmt = OUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"--out {path}: unknown suffix {Path(path).suffix or '(none)'!r}; "
                         f"use one of {', '.join(OUT_FORMATS)}")
    return fmt


def write_out(path: str, table: pa.Table, render_fn) -> None:
    """Write ``table`` to ``path`` in the format its suffix names (``render_fn(fmt)`` gives text formats)."""
    fmt = out_format(path)
    out = Path(path)
    if fmt == "parquet":  # atomic_write: a failure is an OSError naming --out, never its temporary file
        import pyarrow.parquet as pq

        atomic_write(out, lambda tmp: pq.write_table(table, tmp))
    else:
        atomic_write_text(out, render_fn(fmt))
    print(f"wrote {out} ({fmt})", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    if args.out:
        out_format(args.out)  # a bad suffix or an unwritable place fails before anything is read
        check_writable(args.out, "--out")
    if args.plot:
        check_writable(args.plot, "--plot")
    if getattr(args, "recost", None):
        return recost_main(args)
    if getattr(args, "sets", None):
        raise ValueError("--set overrides the deployed network of a re-cost: use it with --recost")
    if getattr(args, "compare", None):
        return compare_main(args)
    from hwnas.experiment import load

    experiment = load(args.uri, endpoint_url=args.endpoint_url)
    trials, front = experiment.trials(), experiment.front()
    sys.stdout.write(render(front, args.format))
    if args.out:
        write_out(args.out, front, lambda fmt: render(front, fmt))
    if args.plot:  # with the hypervolume per scan batch, if recorded
        print(f"wrote {experiment.plot(args.plot)}", file=sys.stderr)
    n_failed = sum(s != "completed" for s in trials.column("status").to_pylist())
    print(f"{front.num_rows} on the front of {trials.num_rows} trials ({n_failed} not completed)", file=sys.stderr)
    return 0


def render_rows(rows: list[dict], fmt: str) -> str:
    """The --compare rows as json, csv or the aligned table."""
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    return render_compare(rows)


def compare_main(args: argparse.Namespace) -> int:
    """--compare: one table (and with --plot one figure) over URI and every URI2."""
    exps = [load_experiment(u, args.endpoint_url) for u in [args.uri, *args.compare]]
    unique_labels(exps)
    rows = compare_rows(exps)
    sys.stdout.write(render_rows(rows, args.format))
    if args.out:
        write_out(args.out, pa.Table.from_pylist(rows), lambda fmt: render_rows(rows, fmt))
    if args.plot:
        print(f"wrote {plot_compare(exps, args.plot)}", file=sys.stderr)
    print("hypervolume: front in (error, dram_time_us / T0, dram_energy_uj / E0), reference point (1, 1.1, 1.1), "
          "T0/E0 = the experiment's mean accuracy-only (lambda = 0) DRAM cost; largest gap: min-max normalised "
          "over all compared trials", file=sys.stderr)
    return 0


def render_recost(table: pa.Table, pairs: list[dict], fmt: str) -> str:
    """--recost output: json {"profiles", "points", "spearman"}; csv the points (one row per profile and
    point); table one aligned table per profile under the network it costs, then the correlations."""
    rows = table.to_pylist()
    if fmt == "json":
        profiles = list(dict.fromkeys(r["profile"] for r in rows))
        return json.dumps({"profiles": profiles, "points": rows, "spearman": pairs}, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=table.column_names, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    columns = ("trial_id", "accuracy", "dram_time_us", "dram_energy_uj", "dram_bytes", "rank")
    blocks = []
    for profile in dict.fromkeys(r["profile"] for r in rows):
        block = [r for r in rows if r["profile"] == profile]
        cells = [[accuracy_cell(r) if c == "accuracy" else _cell(r[c]) for c in columns] for r in block]
        blocks.append(f"profile {profile}: DRAM costs of the {front_network_label(block)}\n{aligned(columns, cells)}")
    return "\n".join(blocks) + "\n" + render_correlations(pairs)


def render_correlations(pairs: list[dict]) -> str:
    """The Spearman lines: would the front's order by DRAM energy hold on the other profile?"""
    if not pairs:
        return "Spearman rank correlation of DRAM energy: needs two or more profiles\n"
    cells = [[p["profile_a"], p["profile_b"], "-" if p["spearman_energy"] is None else f"{p['spearman_energy']:+.3f}",
              str(p["points"])] for p in pairs]
    return ("Spearman rank correlation of the front points' DRAM energy between profiles (+1: the same order "
            "from cheapest to dearest, the front's trade-offs hold there; -: fewer than 2 points or all equal)\n"
            + aligned(("profile_a", "profile_b", "spearman_energy", "points"), cells))


def recost_main(args: argparse.Namespace) -> int:
    """--recost: every front point on every named profile (``results/recost.py``)."""
    from hwnas.costing import rank_correlations, recost
    from hwnas.experiment import load
    from results.recost import recost_overrides, recost_profiles

    if getattr(args, "compare", None) or args.plot:
        raise ValueError("--recost re-costs one experiment's front and prints it: without --compare and --plot")
    profiles = recost_profiles(args.recost)  # an unknown profile fails before anything is read
    overrides = recost_overrides(args.sets)
    front = load(args.uri, endpoint_url=args.endpoint_url).front()
    if front.num_rows == 0:
        raise ValueError(f"{args.uri}: the front is empty (no completed trial): nothing to re-cost")
    table = recost(front, profiles, **overrides)
    pairs = rank_correlations(table)
    sys.stdout.write(render_recost(table, pairs, args.format))
    if args.format == "csv":  # the csv holds the points; the correlations go beside it
        sys.stderr.write(render_correlations(pairs))
    if args.out:
        write_out(args.out, table, lambda fmt: render_recost(table, pairs, fmt))
    print(f"re-costed {front.num_rows} front points on {len(profiles)} profiles", file=sys.stderr)
    return 0
