"""Presets (scenes): save a board's values, recall them at once or over a fade."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sliders import services
from sliders.models import AuditEntry, Preset, Slider
from tests.support.clients import BoardClient
from tests.support.database import stored_board

FOUR = [{"slug": f"s{i}", "min": 0, "max": 100, "value": 10} for i in range(1, 5)]


# --- The services -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_saving_snapshots_the_board_and_recalling_restores_it(make_board) -> None:
    board = make_board(sliders=FOUR)
    services.set_slider_value(board=board, slider_id="s1", value=70)
    services.set_slider_value(board=board, slider_id="s2", value=20)
    preset, created = services.save_preset(board=board, name="  Loud  ")
    assert created
    assert (preset.name, preset.values) == ("Loud", {"s1": 70, "s2": 20, "s3": 10, "s4": 10})

    for slug in ("s1", "s2", "s3"):
        services.set_slider_value(board=board, slider_id=slug, value=50)
    before = stored_board(board)
    changes = services.recall_preset(board=board.slug, name="Loud").changes
    after = stored_board(board)
    assert {c.id for c in changes} == {"s1", "s2", "s3"}  # s4 was already there
    assert {slug: v for slug, (v, _) in after.items()} == preset.values
    for slug in ("s1", "s2", "s3"):
        assert after[slug][1] == before[slug][1] + 1  # one version each
    assert after["s4"] == before["s4"]


@pytest.mark.django_db
def test_saving_again_under_a_name_with_overwrite_replaces_that_preset(make_board) -> None:
    board = make_board(sliders=FOUR)
    services.save_preset(board=board, name="A")
    services.set_slider_value(board=board, slider_id="s1", value=99)
    assert services.save_preset(board=board, name="A", overwrite=True)[1] is False
    assert list(Preset.objects.filter(board=board).values_list("name", "values")) == [
        ("A", {"s1": 99, "s2": 10, "s3": 10, "s4": 10})
    ]


@pytest.mark.django_db
def test_a_recall_fits_values_to_the_sliders_as_they_are_now(make_board) -> None:
    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="Old", values={"s1": 250, "s2": 33.3, "gone": 5})
    recall = services.recall_preset(board=board, name="Old")
    assert recall.as_ack() == {
        "ok": True,
        "name": "Old",
        "skipped": ["gone"],
        "adjusted": [
            {"id": "s1", "saved": 250, "value": 100},
            {"id": "s2", "saved": 33.3, "value": 33},
        ],
    }
    assert {slug: v for slug, (v, _) in stored_board(board).items()} == {
        "s1": 100,  # clamped to the range
        "s2": 33,  # snapped to the step
        "s3": 10,
        "s4": 10,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "Nope"}, "unknown_preset"),
        ({"name": 7}, "bad_request"),
    ],
)
def test_recall_mistakes_change_nothing(make_board, kwargs: dict, code: str) -> None:
    board = make_board(sliders=FOUR)
    before = stored_board(board)
    with pytest.raises(services.Refusal) as error:
        services.recall_preset(board=board, **kwargs)
    assert error.value.code == code and stored_board(board) == before


@pytest.mark.django_db
def test_a_preset_with_a_bad_value_is_refused_whole(make_board) -> None:
    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="Bad", values={"s1": 90, "s2": "loud"})
    before = stored_board(board)
    with pytest.raises(services.Refusal) as error:
        services.recall_preset(board=board, name="Bad")
    assert error.value.code == "invalid_value" and stored_board(board) == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "   ", "x" * 81, None, 5])
def test_a_preset_needs_a_name(make_board, name: Any) -> None:
    board = make_board(sliders=FOUR)
    with pytest.raises(services.Refusal) as error:
        services.save_preset(board=board, name=name)
    assert error.value.code == "bad_request"
    assert not Preset.objects.filter(board=board).exists()


@pytest.mark.django_db
def test_who_may_not_edit_may_neither_save_nor_recall(make_board) -> None:
    board = make_board(sliders=FOUR, edit_access="nobody")
    Preset.objects.create(board=board, name="A", values={"s1": 90})
    for call in (
        lambda: services.save_preset(board=board, name="B"),
        lambda: services.recall_preset(board=board, name="A"),
    ):
        with pytest.raises(services.Refusal) as error:
            call()
        assert error.value.code == "forbidden"
    assert stored_board(board)["s1"] == (10, 0)


# --- Over the socket ---------------------------------------------------------------------------


def changed_ids(message: list[dict[str, Any]]) -> set[str]:
    return {u["id"] for u in message}


@pytest.mark.live
async def test_a_recall_arrives_whole_in_one_message(make_board, connect_client):
    """Invariant: a client never observes half of a preset applied."""
    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="Scene", values={f"s{i}": 20 * i for i in range(1, 5)})
    recaller = await connect_client(board.slug)
    watchers = [await connect_client(board.slug) for _ in range(3)]
    assert recaller.state["presets"] == [{"name": "Scene"}]

    # Others keep dragging s1 meanwhile; the preset's own four changes must still come together.
    dragger = await connect_client(board.slug)
    drag = asyncio.gather(*(dragger.set("s1", v) for v in range(30, 60)))
    assert (await recaller.call("preset:recall", {"name": "Scene"}))["ok"] is True
    await drag
    preset_versions = {slug: version for slug, (_, version) in stored_board(board).items()}
    for watcher in watchers:
        await watcher.wait_for(lambda w=watcher: w.values["s4"][0] == 80)
        with_preset = [m for m in watcher.update_messages if {"s2", "s3", "s4"} & changed_ids(m)]
        assert len(with_preset) == 1, watcher.update_messages
        assert {"s2", "s3", "s4"} <= {u["id"] for u in with_preset[0]}
    assert preset_versions["s4"] == 1


@pytest.mark.live
async def test_saving_from_the_page_reaches_everyone(make_board, connect_client):
    board = make_board(sliders=FOUR)
    saver, watcher = await connect_client(board.slug), await connect_client(board.slug)
    await saver.set("s1", 42)
    assert await saver.call("preset:save", {"name": "Take 1"}) == {
        "ok": True,
        "name": "Take 1",
        "created": True,
    }
    await watcher.wait_for(lambda: watcher.state["presets"] == [{"name": "Take 1"}])
    assert Preset.objects.get(board=board).values["s1"] == 42


@pytest.mark.live
@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("preset:recall", None, "bad_request"),
        ("preset:recall", {"fade": 2}, "bad_request"),
        ("preset:recall", {"name": "A", "fade": -1}, "bad_request"),
        ("preset:recall", {"name": "A", "fade": 61}, "bad_request"),
        ("preset:recall", {"name": "A", "fade": "slow"}, "bad_request"),
        ("preset:recall", {"name": "A", "fade": True}, "bad_request"),
        ("preset:recall", {"name": "Nope"}, "unknown_preset"),
        ("preset:recall", {"name": "Nope", "fade": 2}, "unknown_preset"),
        ("preset:save", {"name": ""}, "bad_request"),
        ("preset:save", {"name": "x" * 81}, "bad_request"),
        ("preset:save", ["A"], "bad_request"),
    ],
)
async def test_bad_preset_requests_are_refused(
    make_board, connect_client, event: str, payload: Any, code: str
):
    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="A", values={"s1": 90})
    client = await connect_client(board.slug)
    ack = await client.call(event, payload)
    assert ack["ok"] is False and ack["error"] == code, ack
    assert stored_board(board)["s1"] == (10, 0)
    assert list(Preset.objects.filter(board=board).values_list("name", flat=True)) == ["A"]


@pytest.mark.live
async def test_a_fade_moves_every_slider_steadily_to_the_preset(make_board, connect_client):
    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="Up", values={"s1": 90, "s2": 50, "s3": 10})
    recaller, watcher = await connect_client(board.slug), await connect_client(board.slug)
    started = asyncio.get_running_loop().time()
    assert (await recaller.call("preset:recall", {"name": "Up", "fade": 1}))["ok"] is True
    await watcher.wait_for(
        lambda: [f["state"] for f in watcher.of("board:fade")] == ["running", "done"]
    )
    assert asyncio.get_running_loop().time() - started >= 0.9
    heard = [u for u in watcher.of("slider:update") if u["id"] == "s1"]
    values = [u["value"] for u in heard]
    assert values == sorted(values) and values[-1] == 90  # monotone, ends exactly on the preset
    assert len(values) >= 10  # steady frames, not a jump
    assert {slug: v for slug, (v, _) in stored_board(board).items()} == {
        "s1": 90, "s2": 50, "s3": 10, "s4": 10,
    }  # fmt: skip
    # Each frame is one transaction: every frame's message holds both moving sliders.
    for message in watcher.update_messages:
        assert {u["id"] for u in message} >= {"s1", "s2"}, message
    # The audit trail shows one merged entry per slider, as a preset recall.
    entries = AuditEntry.objects.filter(board=board.slug, slider="s1")
    assert [(e.source, e.from_value, e.to_value) for e in entries] == [("preset", 10, 90)]


@pytest.mark.live
async def test_grabbing_a_slider_stops_a_fade(make_board, connect_client):
    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="Up", values={"s1": 100, "s2": 100})
    recaller, person = await connect_client(board.slug), await connect_client(board.slug)
    await recaller.call("preset:recall", {"name": "Up", "fade": 3})
    await person.wait_for(lambda: person.values["s1"][0] >= 20)
    await person.call("slider:grab", {"id": "s2"})
    await person.wait_for(
        lambda: [f["state"] for f in person.of("board:fade")][-1:] == ["cancelled"]
    )
    stopped_at = stored_board(board)
    await asyncio.sleep(0.5)
    assert stored_board(board) == stopped_at  # nothing moves any more
    assert 20 <= stopped_at["s1"][0] < 100


@pytest.mark.live
async def test_someone_elses_set_stops_a_fade(make_board, connect_client):
    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="Up", values={"s1": 100})
    recaller, person = await connect_client(board.slug), await connect_client(board.slug)
    await recaller.call("preset:recall", {"name": "Up", "fade": 3})
    await person.wait_for(lambda: person.values["s1"][0] >= 20)
    await person.set("s3", 77)  # a keyboard step, without a grab
    await person.wait_for(
        lambda: [f["state"] for f in person.of("board:fade")][-1:] == ["cancelled"]
    )
    await asyncio.sleep(0.3)
    assert stored_board(board)["s1"][0] < 100 and stored_board(board)["s3"][0] == 77


# --- The admin ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_saves_a_snapshot_and_recalls_it(make_board) -> None:
    board = make_board(sliders=FOUR)
    services.set_slider_value(board=board, slider_id="s1", value=66)
    admin = Client()
    admin.force_login(User.objects.create_superuser("ops"))
    response = admin.post(
        "/admin/sliders/preset/add/",
        {"board": board.pk, "name": "Snap", "position": 0, "values": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    preset = Preset.objects.get(board=board, name="Snap")
    assert preset.values == {"s1": 66, "s2": 10, "s3": 10, "s4": 10}

    services.set_slider_value(board=board, slider_id="s1", value=5)
    response = admin.post(
        "/admin/sliders/preset/",
        {"action": "recall", "_selected_action": [preset.pk]},
        follow=True,
    )
    assert "Recalled" in response.content.decode()
    assert stored_board(board)["s1"][0] == 66
    entry = AuditEntry.objects.filter(board=board.slug, slider="s1").order_by("-id").first()
    assert (entry.source, entry.username) == ("admin", "ops")


@pytest.mark.django_db
def test_the_admin_refuses_values_that_are_not_numbers(make_board) -> None:
    board = make_board(sliders=FOUR)
    admin = Client()
    admin.force_login(User.objects.create_superuser("ops"))
    response = admin.post(
        "/admin/sliders/preset/add/",
        {"board": board.pk, "name": "Bad", "position": 0, "values": '{"s1": "loud"}'},
    )
    assert response.status_code == 200
    assert "&#x27;s1&#x27; must be a number" in response.content.decode()
    assert not Preset.objects.exists()


def test_board_client_records_messages() -> None:
    """The recorder the atomicity test relies on groups updates by message."""
    client = BoardClient("http://unused", "b")
    client._recorder("slider:update")({"id": "a", "value": 1, "version": 1})
    client._record_batch(
        [{"id": "a", "value": 2, "version": 2}, {"id": "b", "value": 3, "version": 1}]
    )
    assert [[u["id"] for u in m] for m in client.update_messages] == [["a"], ["a", "b"]]


# --- Who may stop a fade, and what a fade may overwrite ------------------------------------------


@pytest.mark.live
async def test_a_refused_recall_does_not_stop_a_running_fade(make_board, connect_client):
    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="Up", values={"s1": 100})
    recaller, other = await connect_client(board.slug), await connect_client(board.slug)
    await recaller.call("preset:recall", {"name": "Up", "fade": 1})
    assert (await other.call("preset:recall", {"name": "Nope"}))["error"] == "unknown_preset"
    await other.wait_for(
        lambda: [f["state"] for f in other.of("board:fade")] == ["running", "done"]
    )
    assert stored_board(board)["s1"][0] == 100


@pytest.mark.live
async def test_a_change_from_elsewhere_wins_over_a_fade_frame(
    make_board, connect_client, asgi_server
):
    """A set through the HTTP API (another thread) during a fade stops it and stays."""
    import aiohttp

    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="Up", values={"s1": 100})
    watcher = await connect_client(board.slug)
    await watcher.call("preset:recall", {"name": "Up", "fade": 2})
    await watcher.wait_for(lambda: watcher.values["s1"][0] >= 20)
    async with aiohttp.ClientSession() as http:
        url = f"{asgi_server.url}/api/boards/{board.slug}/sliders/s1"
        async with http.put(url, json={"value": 5}) as response:
            assert response.status == 200
    await watcher.wait_for(
        lambda: [f["state"] for f in watcher.of("board:fade")][-1:] == ["cancelled"]
    )
    await asyncio.sleep(0.3)
    assert stored_board(board)["s1"][0] == 5 and watcher.values["s1"][0] == 5


@pytest.mark.live
async def test_a_preset_with_a_bad_value_is_refused_before_a_fade(make_board, connect_client):
    board = make_board(sliders=FOUR)
    Preset.objects.create(board=board, name="Bad", values={"s1": 90, "s2": "loud"})
    client = await connect_client(board.slug)
    ack = await client.call("preset:recall", {"name": "Bad", "fade": 1})
    assert ack["error"] == "invalid_value"
    await asyncio.sleep(0.2)
    assert client.of("board:fade") == [] and stored_board(board)["s1"] == (10, 0)


@pytest.mark.django_db
def test_the_admin_recalls_and_snapshots_on_any_board(make_board) -> None:
    """The admin is an operator's tool: a board's edit access (editors, nobody) does not apply."""
    board = make_board(sliders=FOUR, edit_access="nobody")
    admin = Client()
    admin.force_login(User.objects.create_superuser("ops"))
    response = admin.post(
        "/admin/sliders/preset/add/",
        {"board": board.pk, "name": "Snap", "position": 3, "values": "", "_continue": "1"},
    )
    preset = Preset.objects.get(board=board, name="Snap")
    assert response["Location"] == f"/admin/sliders/preset/{preset.pk}/change/"
    assert preset.position == 3
    Slider.objects.filter(board=board, slug="s1").update(value=50)
    admin.post("/admin/sliders/preset/", {"action": "recall", "_selected_action": [preset.pk]})
    assert stored_board(board)["s1"][0] == 10
