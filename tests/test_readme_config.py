"""README's config tables are rendered from the schema: a key added, removed or re-documented fails here.

Regenerate them after changing a config field:  .venv/bin/python tests/test_readme_config.py --write
"""
from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
# a block: the opening marker line, the table's lines (none before the first --write), the closing marker line
BLOCK = re.compile(r"^(<!-- config-table: (\w+) -->\n)((?:(?!<!--).*\n)*)(<!-- /config-table -->)$", re.M)


def tables() -> dict[str, str]:
    """Marker name -> the table the schema renders for it."""
    from results.experiment_config import ExperimentConfig
    from searchspace.config import SearchConfig
    from searchspace.schema import markdown_table

    return {"SearchConfig": markdown_table(SearchConfig),
            "ExperimentConfig": markdown_table(ExperimentConfig, exclude=("search",))}


@pytest.mark.parametrize("name", ["SearchConfig", "ExperimentConfig"])
def test_readme_table_matches_the_schema(name):
    found = {m.group(2): m.group(3).rstrip("\n") for m in BLOCK.finditer(README.read_text())}
    assert name in found, f"README lacks the <!-- config-table: {name} --> block"
    assert found[name] == tables()[name], f"README's {name} table is stale: run {Path(__file__).name} --write"


def test_every_key_is_in_the_readme():
    from results.experiment_config import ExperimentConfig
    from searchspace.config import SearchConfig

    text = README.read_text()
    for cls in (SearchConfig, ExperimentConfig):
        for f in dataclasses.fields(cls):
            if f.name != "search":
                assert f"| `{f.name}` |" in text, f"{cls.__name__}.{f.name} is not in README's table"


def write() -> None:
    rendered = tables()
    README.write_text(BLOCK.sub(lambda m: m.group(1) + rendered[m.group(2)] + "\n" + m.group(4), README.read_text()))


if __name__ == "__main__" and "--write" in sys.argv:
    write()
