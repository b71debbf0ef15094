"""docs/ kept true to the tree: the file table of docs/architecture.md names every module."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
ARCHITECTURE = PROJECT_DIR / "docs" / "architecture.md"
# Folders the table describes as a whole rather than file by file.
DESCRIBED_AS_A_WHOLE = ("sliders/migrations/", "sliders/static/sliders/vendor/", "templates/")


def table_paths() -> set[str]:
    """The paths in the first column of the table's rows (a row may name several)."""
    paths: set[str] = set()
    for line in ARCHITECTURE.read_text().splitlines():
        if line.startswith("| `"):
            first_cell = line.split(" | ")[0]
            paths.update(re.findall(r"`([^`]+)`", first_cell))
    return paths


def modules() -> list[str]:
    """The project's Python and JavaScript modules, as paths from the project's folder."""
    found = [
        *PROJECT_DIR.glob("sliderproject/*.py"),
        *PROJECT_DIR.glob("sliders/**/*.py"),
        *PROJECT_DIR.glob("sliders/static/**/*.js"),
    ]
    return sorted(
        relative
        for path in found
        if path.name != "__init__.py"
        and not (relative := path.relative_to(PROJECT_DIR).as_posix()).startswith(
            DESCRIBED_AS_A_WHOLE
        )
    )


def test_every_module_is_in_the_architecture_file_table() -> None:
    listed = table_paths()
    missing = [module for module in modules() if module not in listed]
    assert not missing, f"docs/architecture.md's file table does not name: {missing}"


def test_every_path_in_the_architecture_file_table_exists() -> None:
    gone = [path for path in table_paths() if not (PROJECT_DIR / path).exists()]
    assert not gone, f"docs/architecture.md's file table names what is not there: {gone}"
