"""The per-connection token bucket (sliders/ratelimit.py), on the real clock."""

from __future__ import annotations

import time

from sliders.ratelimit import TokenBucket


def test_a_full_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=0.001, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_tokens_come_back_at_the_rate() -> None:
    bucket = TokenBucket(rate=50, burst=1)  # one token every 20 ms
    assert bucket.take() is True
    assert bucket.take() is False
    time.sleep(0.1)
    assert bucket.take() is True


def test_a_long_pause_refills_no_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=1000, burst=2)
    assert bucket.take() and bucket.take()
    time.sleep(0.05)  # enough for 50 tokens at this rate
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_a_burst_below_one_still_allows_one_at_a_time() -> None:
    bucket = TokenBucket(rate=0.001, burst=0)
    assert bucket.capacity == 1.0
    assert [bucket.take() for _ in range(2)] == [True, False]
