"""The board page's script as the browser loads it: `sliders/static/sliders/board.js` and the ES
modules under `board/` that it imports by relative URL, with no build step.

A browser fetches every module of that graph by its own URL, refuses one served with a type
other than JavaScript, and fails the whole page on a missing module or an import cycle that
reads a binding too early. These tests follow the imports the way a browser does: from the
sources, from a production server (`DEBUG` off), and from the files a hashing storage
(`ManifestStaticFilesStorage`) would write, should production ever switch to one.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from django.core.management import call_command

STATIC = Path(__file__).resolve().parent.parent / "sliders" / "static"
SCRIPT = "sliders/board.js"
# `import ... from "./x.js";`, `export ... from "./x.js";` and `import "./x.js";`
IMPORT = re.compile(r"""(?:\bfrom|^import)\s*["'](?P<url>[^"']+)["']""", re.M)


def imports_of(source: str) -> list[str]:
    return IMPORT.findall(source)


def module_graph(read: Callable[[str], str], start: str) -> dict[str, list[str]]:
    """Every module reachable from `start` and the modules each imports, as absolute URLs
    (`read(url)` gives a module's text)."""
    graph: dict[str, list[str]] = {}
    todo = [start]
    while todo:
        url = todo.pop()
        if url in graph:
            continue
        graph[url] = [urljoin(url, target) for target in imports_of(read(url))]
        todo.extend(graph[url])
    return graph


def cycle_in(graph: dict[str, list[str]]) -> list[str] | None:
    """One import cycle in `graph` (its modules in order), or None."""
    done: set[str] = set()

    def visit(url: str, path: list[str]) -> list[str] | None:
        if url in path:
            return [*path[path.index(url) :], url]
        if url in done:
            return None
        for target in graph.get(url, []):
            found = visit(target, [*path, url])
            if found:
                return found
        done.add(url)
        return None

    for url in graph:
        found = visit(url, [])
        if found:
            return found
    return None


def source_graph() -> dict[str, list[str]]:
    def read(url: str) -> str:
        return (STATIC / urlsplit(url).path.lstrip("/")).read_text()

    return module_graph(read, f"file:///{SCRIPT}")


def test_every_module_under_board_is_imported_and_none_in_a_cycle() -> None:
    graph = source_graph()
    reached = {urlsplit(url).path.lstrip("/") for url in graph}
    on_disk = {SCRIPT} | {
        str(path.relative_to(STATIC)) for path in (STATIC / "sliders" / "board").glob("*.js")
    }
    assert reached == on_disk
    assert len(reached) > 5  # the parser did find the imports
    assert cycle_in(graph) is None, cycle_in(graph)


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": []}
    assert cycle_in(graph) == ["a", "b", "c", "a"]
    assert cycle_in({"a": ["b"], "b": [], "c": ["a", "b"]}) is None


@pytest.mark.live
def test_a_production_server_serves_every_module_of_the_page(
    make_board: Callable[..., Any], start_server: Callable[..., Any]
) -> None:
    """DEBUG off, as in production: the page names its script, and each module the browser
    asks for next is there, as JavaScript, with the text in the repository."""
    board = make_board()
    server = start_server(
        env={
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",  # this test server speaks plain HTTP only
        }
    )
    with urllib.request.urlopen(f"{server.url}/b/{board.slug}/", timeout=10) as response:
        html = response.read().decode()
    found = re.search(r'<script type="module" src="([^"]+)">', html)
    assert found, html
    start = urljoin(server.url, found.group(1))

    def read(url: str) -> str:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200, url
            assert "javascript" in response.headers["Content-Type"], url
            text = response.read().decode()
        assert text == (STATIC / urlsplit(url).path.removeprefix("/static/")).read_text(), url
        return text

    served = module_graph(read, start)
    assert sorted(urlsplit(url).path for url in served) == sorted(
        urljoin("/static/", urlsplit(url).path.lstrip("/")) for url in source_graph()
    )


class HashingStorage(ManifestStaticFilesStorage):
    """Django's hashing storage with the rewriting of JavaScript module imports switched on
    (it is off by default: hashed files would then import the unhashed names)."""

    support_js_module_import_aggregation = True


def test_hashed_static_files_keep_the_modules_linked(tmp_path: Path, settings: Any) -> None:
    """Our storage does not hash names (ServeStatic serves the apps' files as they are; see
    docs/deploy.md). Should production switch to a hashing one, it must rewrite the imports:
    each hashed module then imports the hashed name of the exact version beside it."""
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": f"{__name__}.HashingStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    names = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    hashed = set(names.values())

    def read(url: str) -> str:
        name = urlsplit(url).path.lstrip("/")
        assert name in hashed, f"{name} is not a hashed name"
        return (tmp_path / name).read_text()

    graph = module_graph(read, f"file:///{names[SCRIPT]}")
    originals = {name: original for original, name in names.items()}
    assert sorted(originals[urlsplit(url).path.lstrip("/")] for url in graph) == sorted(
        urlsplit(url).path.lstrip("/") for url in source_graph()
    )
