"""The documentation site and the README, the front door.

The reference pages (command line, config keys, results tables, profiles, errors) are generated from the
code when the site is built (``scripts/docs_reference.py``, an mkdocs hook), so they cannot go stale; these
tests check that they cover everything and that the site builds offline with ``mkdocs build --strict`` (no
broken link or anchor, no page left out of the navigation, nothing fetched from the network).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def reference():
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return reference().pages()


def test_config_reference_has_every_key_as_the_schema_renders_it(pages):
    from results.experiment_config import ExperimentConfig
    from searchspace.config import SearchConfig
    from searchspace.schema import markdown_table
    from searchspace.train_config import TrainConfig

    page = pages["reference/config.md"]
    assert markdown_table(SearchConfig) in page and markdown_table(TrainConfig) in page
    assert markdown_table(ExperimentConfig, exclude=("search",)) in page
    for cls in (SearchConfig, ExperimentConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            if f.name != "search":
                assert f"| `{f.name}` |" in page, f"{cls.__name__}.{f.name} is not in the config reference"


def test_schema_reference_has_every_table(pages):
    from results.recost import RECOST_COLUMNS
    from results.scan_metrics import SCAN_COLUMNS
    from results.schema import schema_markdown
    from results.seedstats import POINT_COLUMNS

    page = pages["reference/schemas.md"]
    assert schema_markdown() in page
    for name, _, _ in (*POINT_COLUMNS, *SCAN_COLUMNS, *RECOST_COLUMNS):
        assert f"| `{name}` |" in page


def test_cli_reference_has_every_command_and_option(pages):
    from hwnas.cli import _COMMANDS, build_parser

    page = pages["reference/cli.md"]
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    assert set(subparsers) == set(_COMMANDS)
    for name, sub in subparsers.items():
        assert f"## hwnas {name}\n" in page
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}`" in page, f"hwnas {name} {flag} is not in the command reference"


def test_errors_reference_maps_every_exception_to_its_exit_code(pages):
    import hwnas

    page = pages["reference/errors.md"]
    for name in hwnas.__all__:
        obj = getattr(hwnas, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert f"| `hwnas.{name}` |" in page and issubclass(obj, hwnas.HwnasError)
            assert obj.exit_code == (3 if issubclass(obj, hwnas.SaveError) else 2)


def test_site_builds_offline_and_strict(tmp_path):
    """``mkdocs build --strict`` into a temporary folder: every link and anchor resolves, every page is in the
    navigation, the API reference renders from the docstrings, and no page loads anything from the network."""
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "WARNING" not in done.stderr, done.stderr[-4000:]
    for page in ("reference/cli.html", "reference/config.html", "reference/schemas.html", "reference/profiles.html",
                 "reference/errors.html", "reference/api.html", "benchmarks.html", "index.html"):
        assert (site / page).is_file(), page
    api = (site / "reference" / "api.html").read_text()
    for name in ("search", "load", "Experiment", "cost", "recost", "pick", "train", "export"):
        assert f'id="hwnas.{name}"' in api, f"hwnas.{name} is not rendered in the API reference"
    for html in site.rglob("*.html"):
        text = html.read_text()
        remote = re.findall(r'<(?:link|script|img)[^>]+(?:href|src)="(https?://[^"]+)"', text)
        assert not remote, f"{html.relative_to(site)} loads {remote}"
        assert "fonts.googleapis" not in text


def test_readme_is_the_front_door():
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) <= 150, f"README has {len(lines)} lines: move the detail into docs/"
    # the two commands that work on a fresh machine, first thing
    assert ("# 1. the main job: a real lambda scan on Fashion-MNIST, local Ray, results in ./hwnas-results\n"
            "bash scripts/setup.sh && .venv/bin/hwnas search --preset fashion\n"
            "# 2. the tests\n"
            "bash scripts/test.sh\n") in text
    # nothing outside the project
    assert "shared/" not in text and "loopback" not in text and "sandbox" not in text
    # every relative link and image resolves; the front plot is small
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
    image = ROOT / "docs" / "assets" / "front.png"
    assert "docs/assets/front.png" in text and image.read_bytes()[:4] == b"\x89PNG"
    assert image.stat().st_size < 100_000
    # a Python example of the API that names real functions
    import hwnas

    for call in re.findall(r"hwnas\.(\w+)\(", text):
        assert call in hwnas.__all__, f"README calls hwnas.{call}, which the API does not export"
