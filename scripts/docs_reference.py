"""The documentation site's generated reference pages, and the mkdocs hook that adds them at build time.

mkdocs.yml names this file under ``hooks:``; on every build ``on_files`` adds the pages of ``pages()`` to the
site as generated files, so they are never committed and never stale: the command reference comes from the
``hwnas`` argparse parsers, the config reference from the config schema (``searchspace.schema``), the
Parquet schemas from their column declarations, the profiles from ``cost_models/profiles/*.toml`` and the
errors from ``hwnas.errors``. Tests import ``pages()`` to check what the pages hold
(``tests/test_docs.py``). Run it alone to print one page: ``python scripts/docs_reference.py reference/cli.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a bare checkout: the packages beside this folder
    sys.path.insert(0, str(ROOT))

GENERATED_NOTE = ("<!-- generated at build time by scripts/docs_reference.py ({what}); edit the source, not this "
                  "page -->\n")


def _cell(text: Any) -> str:
    """Text for a Markdown table cell: one line, ``|`` escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


# ---------------------------------------------------------------------------------------------- CLI
def _option_row(action: argparse.Action) -> str | None:
    if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:  # noqa: SLF001
        return None
    if action.option_strings:
        names = ", ".join(f"`{s}`" for s in action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or (action.dest.upper())
            if isinstance(metavar, tuple):
                metavar = " ".join(metavar)
            names += f" `{metavar}`" + (" ..." if action.nargs in ("+", "*") else "")
    else:
        names = f"`{action.metavar or action.dest}`"
    default = action.default
    shown = "" if default in (None, False, [], argparse.SUPPRESS) or not action.option_strings or action.nargs == 0 \
        else f"`{default}`"
    choices = f" (one of: {', '.join(str(c) for c in action.choices)})" if action.choices else ""
    return f"| {names} | {shown} | {_cell((action.help or '') % {'default': default} if action.help else '')}{choices} |"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _options_table(parser: argparse.ArgumentParser) -> str:
    rows = [r for r in (_option_row(a) for a in parser._actions) if r]  # noqa: SLF001
    if not rows:
        return ""
    return "| argument | default | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def cli_page() -> str:
    """``reference/cli.md``: every command of ``hwnas`` from its argparse parser."""
    from hwnas.cli import build_parser

    parser = build_parser()
    parser.prog = "hwnas"
    out = [GENERATED_NOTE.format(what="the argparse parsers of hwnas/cli/"), "# Command line\n",
           "Every command and option of `hwnas`, generated from its argparse parser (`hwnas COMMAND --help` "
           "prints the same). Each command is a thin layer over the [Python API](api.md); its errors are one "
           "line on stderr and an [exit code](errors.md).\n",
           "```text\n" + parser.format_usage().strip() + "\n```\n", "## Global options\n", _options_table(parser)]
    for name, sub in _subparsers(parser).items():
        out.append(f"## hwnas {name}\n")
        if sub.description:
            out.append(sub.description.strip() + "\n")
        out.append("```text\n" + sub.format_usage().replace("usage: ", "").strip() + "\n```\n")
        out.append(_options_table(sub))
        if sub.epilog:
            out.append("```text\n" + sub.epilog.strip() + "\n```\n")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- config
def config_page() -> str:
    """``reference/config.md``: every key of the experiment, search and training configs from the schema."""
    from results.experiment_config import EXPERIMENT_PRESETS, ExperimentConfig
    from searchspace.config import PRESETS, SearchConfig
    from searchspace.schema import markdown_table
    from searchspace.train_config import TRAIN_PRESETS, TrainConfig

    def presets(table: dict[str, dict[str, Any]]) -> str:
        lines = ["| preset | keys |", "|---|---|"]
        for name, values in table.items():
            keys = ", ".join(f"`{k}={list(v) if isinstance(v, tuple) else v}`" for k, v in values.items())
            lines.append(f"| `{name}` | {_cell(keys)} |")
        return "\n".join(lines) + "\n"

    return "\n".join([
        GENERATED_NOTE.format(what="searchspace.schema.markdown_table"), "# Configuration keys\n",
        "Every key, its default, what it allows and what it means, rendered from the one schema that checks "
        "them (`searchspace/schema.py`): an unknown key or a bad value is a `ConfigError` (exit code 2) naming "
        "both. Sources, later ones winning: a preset < a config file (`--config`, YAML or JSON; or a mapping "
        "passed to `hwnas.search(config=...)`) < `--set KEY=VALUE` (values JSON where they parse, else "
        "strings; a list key also takes `a,b`) < Python keyword overrides < `--name` / `--storage` / "
        "`--endpoint-url`.\n",
        "## Experiment keys (`hwnas search`)\n",
        "`ExperimentConfig` (`results/experiment_config.py`): what `hwnas search` scans, where it writes, what "
        "each trial gets. Search keys go under `search:` in a file, as `search.KEY`, or plain where the key "
        "is only a search key. `seed`, `lambda_time`, `lambda_energy`, `dram_time_budget_us`, "
        "`dram_energy_budget_uj` and `profile` are scan dimensions: setting them sets the scanned lists.\n",
        markdown_table(ExperimentConfig, exclude=("search",)) + "\n",
        "Presets (`--preset`; their search keys are below):\n", presets(EXPERIMENT_PRESETS),
        "## Search keys (one trial: `hwnas trial`, `search:` of an experiment)\n",
        "`SearchConfig` (`searchspace/config.py`). A `config` cell of `trials.parquet` is a valid `hwnas trial "
        "--config` file.\n",
        markdown_table(SearchConfig) + "\n", "Presets:\n", presets(PRESETS),
        "## Training keys (`hwnas train`)\n", "`TrainConfig` (`searchspace/train_config.py`).\n",
        markdown_table(TrainConfig) + "\n", "Presets:\n", presets(TRAIN_PRESETS)])


# ---------------------------------------------------------------------------------------------- schemas
def _columns(columns) -> str:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {typ} | {_cell(meaning)} |" for name, typ, meaning in columns]
    return "\n".join(lines) + "\n"


def schemas_page() -> str:
    """``reference/schemas.md``: the Parquet tables an experiment writes, from their column declarations."""
    from results.recost import RECOST_COLUMNS
    from results.scan_metrics import SCAN_COLUMNS
    from results.schema import schema_markdown
    from results.seedstats import POINT_COLUMNS

    return "\n".join([
        GENERATED_NOTE.format(what="results.schema, results.seedstats, results.scan_metrics, results.recost"),
        "# Results tables\n",
        "What `<storage>/<name>/` holds, every table written by pyarrow as one object (a reader sees the "
        "previous one or the new one, never a part). `hwnas.load(uri).trials()` / `.front()` / `.points()` / "
        "`.scan()` read them back as pyarrow Tables; `hwnas pareto` prints them.\n",
        "## trials.parquet and pareto.parquet\n",
        "One row per trial in `trials.parquet`; `pareto.parquet` holds the rows with `is_pareto` true, sorted by "
        "`error`. The front is non-dominated on (`error`, `dram_time_us`, `dram_energy_uj`), all minimised, over "
        "completed rows: failed rows and rows with a missing or NaN objective are never on it, exact duplicates "
        "both stay on it. Failed trials stay with `status = failed` and their exception in `error_message`; "
        "`error` is always the classification error, never text. Both are rewritten after every trial that "
        "completes or fails (trials still running show as `incomplete`) and once more at the end.\n",
        schema_markdown() + "\n",
        "## points.parquet\n",
        "Seed statistics, one row per scan point (written by both scans): mean ± sample std and best of N over "
        "the point's completed seeds, and the front over the per-point means next to the all-trials front. "
        "[The scan](../concepts/scan.md#seed-statistics) says what its spread means.\n",
        _columns(POINT_COLUMNS),
        "## scan.parquet\n",
        "One row per suggestion batch (a grid experiment writes one row, batch 0), written when the Tuner "
        "finishes; row b describes the trials of batches 0..b, so `hv_gain` is what batch b added. The "
        "hypervolume's reference point: [the scan](../concepts/scan.md#hypervolume-and-its-reference-point).\n",
        _columns(SCAN_COLUMNS),
        "## Re-cost table (`hwnas.recost`, `hwnas pareto --recost`)\n",
        "One row per (profile, front point); not stored in the experiment, written where `--out` says.\n",
        _columns(RECOST_COLUMNS),
        "## experiment.json\n",
        "The experiment's whole config (`ExperimentConfig.to_dict()`), the hwnas version, when the run "
        "started and, at the end, when it finished and the trials' counts; `hwnas search --resume NAME` "
        "rebuilds the experiment from it. `claim.json` exists while a driver runs the experiment.\n"])


# ---------------------------------------------------------------------------------------------- profiles
def profiles_page() -> str:
    """``reference/profiles.md``: the built-in processor profiles' numbers, from their TOML files."""
    from cost_models.profile import list_profiles

    profiles = list_profiles()
    keys = list(profiles[0].summary())
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for p in profiles:
        s = p.summary()
        source = Path(str(s.get("source", "")))
        if source.is_absolute() and ROOT in source.parents:
            s["source"] = source.relative_to(ROOT).as_posix()
        lines.append("| " + " | ".join(_cell(s[k]) for k in keys) + " |")
    return "\n".join([
        GENERATED_NOTE.format(what="cost_models/profiles/*.toml"), "# Processor profiles\n",
        "The built-in profiles, as `hwnas cost --list-profiles` / `hwnas.profiles()` give them; every number "
        "has its source in a comment of its TOML file (`cost_models/profiles/`). "
        "[Add your own](../how-to/custom-profile.md); what the fields mean: "
        "[the DRAM model](../concepts/cost-model.md#profiles).\n",
        "\n".join(lines) + "\n"])


# ---------------------------------------------------------------------------------------------- errors
def errors_page() -> str:
    """``reference/errors.md``: the exception hierarchy and the exit code of each, from ``hwnas.errors``."""
    import inspect

    import hwnas
    from searchspace.errors import EXIT_INTERRUPTED, EXIT_NOT_COMPLETED, EXIT_OK

    classes = [getattr(hwnas, n) for n in hwnas.__all__ if isinstance(getattr(hwnas, n), type)
               and issubclass(getattr(hwnas, n), BaseException)]
    lines = ["| exception | is a | exit code | when |", "|---|---|---|---|"]
    for cls in classes:
        bases = ", ".join(f"`{b.__name__}`" for b in cls.__bases__ if b is not Exception)
        doc = inspect.getdoc(cls) or ""
        lines.append(f"| `hwnas.{cls.__name__}` | {bases} | {cls.exit_code} | {_cell(doc.split(chr(10) + chr(10))[0])} |")
    return "\n".join([
        GENERATED_NOTE.format(what="hwnas.errors"), "# Errors and exit codes\n",
        "One hierarchy for the Python API and the command line. Every error hwnas raises on purpose is an "
        "`hwnas.HwnasError`; the `hwnas` command prints it as one line on stderr (`hwnas COMMAND: error: "
        "...`, never a traceback; `hwnas -v` logs it) and exits with its `exit_code`:\n",
        "\n".join(lines) + "\n",
        "The API functions raise these types only: a plain `ValueError` or `FileNotFoundError` from the code "
        "underneath reaches the caller as an `InputError` or `NotFoundError` with the same message (the "
        "original as `__cause__`). Other `OSError` (a permission, a connection) and pyarrow's errors pass "
        "through; the command line exits 2 for `PermissionError` / `ConnectionError` and 3 for the others.\n",
        "## Exit codes of `hwnas search`\n",
        "| code | meaning |", "|---|---|",
        f"| {EXIT_OK} | every trial completed and the tables are written (`hwnas.search` returns, "
        "`summary.all_completed`) |",
        f"| {EXIT_NOT_COMPLETED} | the tables are written, but some trial failed or is incomplete: the summary "
        "lists them; `--resume NAME` reruns them. Also an interrupted run (Ctrl-C or SIGTERM): the last line is "
        "`hwnas search: interrupted by SIGTERM; ... continue with: hwnas search --resume NAME [--storage URI]` "
        "(`hwnas.search` returns; `summary.interrupted`) |",
        "| 2 | bad input, found before any trial (an `InputError`): a config key or value, an empty `--config` "
        "file, a profile, the storage, a name that already has results (use `--resume`/`--overwrite`), a name "
        "another driver is running now (the message names its start time, host and pid), `--resume` of a name "
        "that does not exist; all of these before Ray starts. After Ray starts, still before any trial: a "
        "trial that fits on no node of a local Ray |",
        "| 3 | the results could not be written to the storage, at the end or during the run (`ResultsNotSaved`, "
        "a `SaveError`): every trial's row is in `./hwnas-unsaved/<name>-<time>/` (the error line names it); "
        "or another I/O or Arrow error |",
        f"| {EXIT_INTERRUPTED} | interrupted (Ctrl-C, SIGTERM) before any trial ran: nothing to save "
        "(`KeyboardInterrupt` in Python) |",
        "",
        "`hwnas submit` passes its job's code on. `hwnas trial` uses the same codes: `--out` and `--checkpoint` "
        "are checked before the search (2 if they cannot be written), and if the `--out` write still fails "
        "afterwards the record is printed on stdout and the exit code is 3. The other commands too: bad input "
        "(a file that is not what it should be) is 2, a failed write 3; an error names the file the user gave, "
        "never a temporary file beside it. [Resuming after faults](../how-to/resume.md) walks through each "
        "case.\n"])


#: site path -> generator of the page's Markdown
GENERATORS = {
    "reference/cli.md": cli_page,
    "reference/config.md": config_page,
    "reference/schemas.md": schemas_page,
    "reference/profiles.md": profiles_page,
    "reference/errors.md": errors_page,
}


def pages() -> dict[str, str]:
    """Every generated page: site path -> Markdown."""
    return {path: make() for path, make in GENERATORS.items()}


# ---------------------------------------------------------------------------------------------- mkdocs hook
def on_files(files, config):  # noqa: ANN001 - mkdocs' hook signature
    """mkdocs hook: add the generated reference pages to the site's files."""
    from mkdocs.structure.files import File

    for path, text in pages().items():
        existing = files.get_file_from_path(path)
        if existing is not None:  # a committed page of the same name would go stale: refuse it
            raise SystemExit(f"docs/{path} is generated by scripts/docs_reference.py: remove the committed file")
        files.append(File.generated(config, path, content=text))
    return files


if __name__ == "__main__":
    wanted = sys.argv[1:] or list(GENERATORS)
    for name in wanted:
        sys.stdout.write(GENERATORS[name]())
