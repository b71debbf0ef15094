"""No module in `sliders/` is longer than 400 lines unless its docstring says why.

A module may be longer when its docstring has a line "Longer than 400 lines because ...".
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 400
REASON = "Longer than 400 lines because"


def long_modules() -> dict[str, int]:
    found = {}
    for path in sorted((ROOT / "sliders").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > LIMIT and REASON not in docstring:
            found[str(path.relative_to(ROOT))] = lines
    return found


def test_no_module_is_longer_than_400_lines_without_a_reason() -> None:
    assert long_modules() == {}
