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

from .compare import compare_rows, render_compare, unique_labels
from .plot import plot_compare, plot_front
from .tables import load_experiment, load_front, load_scan

# the columns the table format shows (csv and json carry every column)
TABLE_COLUMNS = ("trial_id", "seed", "profile", "lambda_time", "lambda_energy", "accuracy", "error",
                 "dram_time_us", "dram_energy_uj", "dram_bytes", "params", "skip_count")
# shown after TABLE_COLUMNS when some row of the front has a budget set (issue 10)
BUDGET_TABLE_COLUMNS = ("dram_time_budget_us", "dram_energy_budget_uj")


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
               "  hwnas pareto hwnas-results/grid --compare hwnas-results/adaptive --plot compare.png")
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
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.4g}"
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
    if getattr(args, "compare", None):
        return compare_main(args)
    trials, front = load_front(args.uri, args.endpoint_url)
    sys.stdout.write(render(front, args.format))
    if args.out:
        write_out(args.out, front, lambda fmt: render(front, fmt))
    if args.plot:
        scan = load_scan(args.uri, args.endpoint_url)  # hypervolume per scan batch, if recorded
        print(f"wrote {plot_front(trials, args.plot, title=args.uri.rstrip('/').rsplit('/', 1)[-1], scan=scan)}",
              file=sys.stderr)
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
