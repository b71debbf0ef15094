"""Webhooks and private addresses: with WEBHOOK_BLOCK_PRIVATE_ADDRESSES a receiver on this
machine is refused, by address and by name, and never tried again.

A module of its own: its server is the only one running bridges while it runs (the shared one of
tests/test_webhooks.py, on the same database, would deliver to the same webhooks).
"""

from __future__ import annotations

import pytest

from tests.support.waiting import wait_until
from tests.support.webhooks import SERVER_ENV, add_webhook, deliveries

pytestmark = pytest.mark.live


async def test_private_addresses_are_refused_when_the_setting_says_so(
    make_board, connect_client, start_server, receivers
):
    server = start_server(env={**SERVER_ENV, "WEBHOOK_BLOCK_PRIVATE_ADDRESSES": "true"})
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 50}])
    receiver = await receivers()
    by_address = await add_webhook(server, board, receiver.url)
    by_name = await add_webhook(server, board, f"http://localhost:{receiver.port}/")
    client = await connect_client(board.slug, server=server)

    assert (await client.set("s1", 12))["ok"] is True
    for webhook in (by_address, by_name):
        await wait_until(lambda w=webhook: deliveries(w), what="the refusal in the log")
        assert deliveries(webhook) == [(1, "gave_up", None)]  # not tried again
    assert receiver.posts == []
    from sliders.models import WebhookDelivery

    errors = WebhookDelivery.objects.filter(webhook__board=board).values_list("error", flat=True)
    assert all("not a public address" in error for error in errors), list(errors)
