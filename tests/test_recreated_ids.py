"""Re-created ids: a slider or board that takes an id someone had before is heard at once.

Clients, and every process's fan-out, drop an update whose version is not above the one they
hold for that id. So the versions under a key (board slug, slider slug) must never go back: a
slider that takes a key its predecessor left at version N starts above N (invariant 9).

The live tests make every change where people make it (the admin, the HTTP API, the board) on a
real uvicorn; the others check each way Django offers to delete or re-key a slider.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from sliders import services
from sliders.models import Board, Slider
from tests.support.clients import connect
from tests.support.database import slider_row
from tests.support.http import AdminSession
from tests.support.services import manage

SETS = 5  # changes made to the first holder of a key, so its version ends at 5


async def set_over_api(base_url: str, board_slug: str, slug: str, values: range) -> int:
    """Set a slider through the HTTP API with no page open (anonymously); its last version."""
    version = -1
    async with aiohttp.ClientSession() as http:
        for value in values:
            async with http.put(
                f"{base_url}/api/boards/{board_slug}/sliders/{slug}", json={"value": value}
            ) as response:
                body = await response.json()
                assert response.status == 200, body
                version = body["version"]
    return version


async def board_form(admin: AdminSession, path: str) -> dict[str, str]:
    """The board add or change form as the admin renders it, without the template form."""
    data = await admin.form(path, "board_form")
    return {k: v for k, v in data.items() if "__prefix__" not in k}


def add_inline_slider(data: dict[str, str], **fields: Any) -> None:
    index = int(data["sliders-TOTAL_FORMS"])
    data["sliders-TOTAL_FORMS"] = str(index + 1)
    defaults = {"position": 0, "min": 0, "max": 100, "step": 1, "value": 0}
    for key, value in {**defaults, **fields}.items():
        data[f"sliders-{index}-{key}"] = str(value)


async def post_form(admin: AdminSession, path: str, data: dict[str, str]) -> None:
    status, _, body = await admin.post(path, data)
    errors = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', body)
    assert status == 302, errors or body[-2000:]


async def assert_heard(sender: Any, listeners: list[Any], slug: str, value: float) -> int:
    """`sender` sets the slider; every listener hears that very version. Returns it."""
    ack = await sender.set(slug, value)
    assert ack["ok"] is True, ack
    for listener in listeners:
        await listener.wait_for(
            lambda listener=listener: listener.values.get(slug) == (float(value), ack["version"]),
            timeout=3,
        )
    return ack["version"]


# --- Live: the admin, the API and the board on a real server -----------------------------------


async def a_board_moved_on(make_board: Any, connect_client: Any) -> tuple[Any, Any, Any, int]:
    """A board whose s1 was set SETS times, heard by a watcher: (board, watcher, mover, the
    version s1 reached)."""
    board = make_board(sliders=[{"slug": "s1", "value": 0}, {"slug": "s2", "value": 0}])
    watcher = await connect_client(board.slug)
    mover = await connect_client(board.slug)
    for value in range(1, SETS + 1):
        old_version = await assert_heard(mover, [watcher], "s1", value)
    return board, watcher, mover, old_version


@pytest.mark.live
async def test_a_recreated_slider_is_heard_at_once(
    make_board: Any, connect_client: Any, admin_http: AdminSession
) -> None:
    board, watcher, mover, old_version = await a_board_moved_on(make_board, connect_client)
    assert old_version == SETS

    old = slider_row(board.slug, "s1")
    await admin_http.submit(f"/admin/sliders/slider/{old.pk}/delete/", "post")
    await watcher.wait_for(lambda: "s1" not in watcher.values)
    await admin_http.submit(
        "/admin/sliders/slider/add/", "slider_form",
        board=str(board.pk), slug="s1", name="Again", value="30", position="0", _save="Save",
    )  # fmt: skip
    await watcher.wait_for(lambda: "s1" in watcher.values)
    assert watcher.values["s1"][0] == 30.0

    # The page that watched the old s1 hears the new one at once; so does a late joiner.
    version = await assert_heard(mover, [watcher], "s1", 42)
    late = await connect_client(board.slug)
    assert late.values["s1"] == (42.0, version)
    newest = await assert_heard(mover, [watcher, late], "s1", 43)
    assert newest > version > old_version
    assert watcher.stale_updates == late.stale_updates == 0


@pytest.mark.live
async def test_a_recreated_board_is_heard_at_once(
    make_board: Any, connect_client: Any, admin_http: AdminSession, asgi_server: Any
) -> None:
    board = make_board(sliders=[{"slug": "s1", "value": 0}])
    # Changed while nobody has the page open (a script, say); then deleted and made again.
    old_version = await set_over_api(asgi_server.url, board.slug, "s1", range(1, SETS + 1))
    assert old_version == SETS
    await admin_http.submit(f"/admin/sliders/board/{board.pk}/delete/", "post")
    assert not Board.objects.filter(slug=board.slug).exists()

    data = await board_form(admin_http, "/admin/sliders/board/add/")
    data.update(name="Again", slug=board.slug, _save="Save")
    add_inline_slider(data, slug="s1", name="Again", value=20)
    await post_form(admin_http, "/admin/sliders/board/add/", data)

    first = await connect_client(board.slug)
    second = await connect_client(board.slug)
    assert first.values["s1"] == second.values["s1"]
    assert first.values["s1"][0] == 20.0
    version = await assert_heard(first, [second], "s1", 42)
    assert await assert_heard(second, [first], "s1", 43) > version > old_version


@pytest.mark.live
async def test_a_slider_renamed_into_a_retired_id_is_heard_at_once(
    make_board: Any, connect_client: Any, admin_http: AdminSession
) -> None:
    board, watcher, mover, old_version = await a_board_moved_on(make_board, connect_client)

    old = slider_row(board.slug, "s1")
    await admin_http.submit(f"/admin/sliders/slider/{old.pk}/delete/", "post")
    await watcher.wait_for(lambda: "s1" not in watcher.values)
    renamed = slider_row(board.slug, "s2")
    await admin_http.submit(
        f"/admin/sliders/slider/{renamed.pk}/change/", "slider_form", slug="s1", _save="Save"
    )
    await watcher.wait_for(lambda: "s1" in watcher.values and "s2" not in watcher.values)

    version = await assert_heard(mover, [watcher], "s1", 42)
    assert version > old_version
    late = await connect_client(board.slug)
    await assert_heard(mover, [watcher, late], "s1", 43)


@pytest.mark.live
async def test_a_board_renamed_onto_a_used_slug_is_heard_at_once(
    make_board: Any, connect_client: Any, admin_http: AdminSession, asgi_server: Any
) -> None:
    used = make_board(sliders=[{"slug": "s1", "value": 0}])
    slug = used.slug
    old_version = await set_over_api(asgi_server.url, slug, "s1", range(1, SETS + 1))
    newer = make_board(sliders=[{"slug": "s1", "value": 0}])

    # The board gives up its slug, and another board takes it.
    for row, new_slug in ((used, f"{slug}-old"), (newer, slug)):
        path = f"/admin/sliders/board/{row.pk}/change/"
        data = await board_form(admin_http, path)
        data.update(slug=new_slug, _save="Save")
        await post_form(admin_http, path, data)
    assert Board.objects.get(pk=newer.pk).slug == slug

    first = await connect_client(slug)
    second = await connect_client(slug)
    version = await assert_heard(first, [second], "s1", 42)
    assert version > old_version
    # The board that gave the slug up goes on under its new one, its versions intact.
    assert slider_row(f"{slug}-old", "s1").version >= old_version


@pytest.mark.live
@pytest.mark.scaleout
async def test_a_recreated_slider_is_heard_at_once_on_every_process(
    cluster: Any,
    clients: Any,
    services_env: dict[str, str],
) -> None:
    """Two processes on PostgreSQL and Redis; the slider is deleted and made again in a shell."""
    a, b = cluster
    on_a = await connect(a.url, clients)
    on_b = await connect(b.url, clients)
    for value in range(1, SETS + 1):
        old_version = await assert_heard(on_a, [on_b], "s1", value)
    manage(
        "shell",
        "-c",
        "from sliders import services; from sliders.models import Board, Slider;"
        "services.delete_slider(slider=Slider.objects.get(board__slug='main', slug='s1'));"
        "services.save_slider(slider=Slider(board=Board.objects.get(slug='main'), slug='s1',"
        " name='Again'), requested_value=30)",
        env=services_env,
    )
    for client in (on_a, on_b):
        await client.wait_for(lambda c=client: c.values.get("s1", (None,))[0] == 30.0)
    version = await assert_heard(on_a, [on_b], "s1", 42)
    assert await assert_heard(on_b, [on_a], "s1", 43) > version > old_version


# --- Every way Django deletes or re-keys a slider -----------------------------------------------


def _delete_instance(board: Board) -> None:
    board.sliders.get(slug="s1").delete()


def _delete_queryset(board: Board) -> None:
    Slider.objects.filter(board=board, slug="s1").delete()


def _delete_through_service(board: Board) -> None:
    services.delete_slider(slider=board.sliders.get(slug="s1"))


def _delete_board(board: Board) -> None:
    services.delete_board(board=board)  # the sliders go with it (a cascade)


def _delete_board_queryset(board: Board) -> None:
    Board.objects.filter(pk=board.pk).delete()


@pytest.mark.parametrize(
    "delete",
    [_delete_instance, _delete_queryset, _delete_through_service, _delete_board,
     _delete_board_queryset],
    ids=["instance", "queryset", "service", "board", "board-queryset"],
)  # fmt: skip
def test_every_way_of_deleting_a_slider_retires_its_version(make_board: Any, delete: Any) -> None:
    board = make_board(sliders=[{"slug": "s1", "value": 0}])
    for value in range(1, SETS + 1):
        services.set_slider_value(board=board, slider_id="s1", value=value)
    delete(board)

    # A new holder of the key, made any way at all (the admin, a shell), starts above it.
    home, _ = Board.objects.get_or_create(slug=board.slug, defaults={"name": "Again"})
    created = services.save_slider(slider=Slider(board=home, slug="s1", name="Again"))
    assert created.version == SETS + 1 == slider_row(board.slug, "s1").version
    slider_row(board.slug, "s1").delete()
    assert Slider.objects.create(board=home, slug="s1", name="Shell").version == SETS + 2
    assert slider_row(board.slug, "s1").version == SETS + 2


def test_a_slider_moved_onto_a_retired_key_takes_a_version_above_it(make_board: Any) -> None:
    first = make_board(sliders=[{"slug": "s1", "value": 0}])
    second = make_board(sliders=[{"slug": "s1", "value": 0}, {"slug": "s2", "value": 0}])
    for value in range(1, SETS + 1):
        services.set_slider_value(board=first, slider_id="s1", value=value)
    services.set_slider_value(board=second, slider_id="s1", value=70)

    # first/s1 moves to the second board as s3: first/s1 is retired at 5, s3 keeps its 5.
    moving = slider_row(first.slug, "s1")
    moving.board, moving.slug = second, "s3"
    change = services.save_slider(slider=moving)
    assert (change.board, change.id, change.version) == (second.slug, "s3", SETS)
    # second/s2 (version 0) moves into first/s1: above 5, and so is the value it then gets.
    moving = slider_row(second.slug, "s2")
    moving.board, moving.slug = first, "s1"
    change = services.save_slider(slider=moving, requested_value=30)
    assert (change.board, change.id, change.value) == (first.slug, "s1", 30.0)
    assert change.version > SETS
    assert slider_row(first.slug, "s1").version == change.version
    # A slider renamed in a shell (a plain save) follows the same rule.
    renamed = slider_row(second.slug, "s1")  # version 1
    slider_row(second.slug, "s3").delete()  # retired at 5
    renamed.slug = "s3"
    renamed.save()
    assert slider_row(second.slug, "s3").version == SETS + 1
    assert renamed.version == SETS + 1


def test_a_board_renamed_in_a_shell_lifts_its_sliders_above_the_retired_keys(
    make_board: Any,
) -> None:
    used = make_board(sliders=[{"slug": "s1", "value": 0}])
    for value in range(1, SETS + 1):
        services.set_slider_value(board=used, slider_id="s1", value=value)
    slug = used.slug
    used.slug = f"{slug}-old"
    used.save()
    newer = make_board(sliders=[{"slug": "s1", "value": 0}, {"slug": "s2", "value": 0}])
    newer.slug = slug
    newer.save()
    assert slider_row(slug, "s1").version == SETS + 1
    assert slider_row(slug, "s2").version == 0  # a key nobody had keeps its version
