"""OSC address patterns (sliders/bridges/osc_patterns.py): OSC 1.0's rules, in linear time."""

from __future__ import annotations

import random

import pytest
from pythonosc.dispatcher import Dispatcher

from sliders.bridges.osc_patterns import matches


@pytest.mark.parametrize(
    ("pattern", "address", "expected"),
    [
        ("/main/s1", "/main/s1", True),
        ("/main/*", "/main/s1", True),
        ("/main/*", "/main/s1/x", False),  # `*` stays within a part
        ("/*/s1", "/main/s1", True),
        ("/main/s?", "/main/s1", True),
        ("/main/s?", "/main/s12", False),
        ("/main/s[0-9]", "/main/s5", True),
        ("/main/s[!0-9]", "/main/s5", False),
        ("/main/s[!0-9]", "/main/sx", True),
        ("/m/[-a]", "/m/-", True),
        ("/main/{s1,s2}", "/main/s2", True),
        ("/main/{s1,s2}", "/main/s3", False),
        ("/main/{,s}1", "/main/1", True),
        ("/main/*a*b*", "/main/xaybz", True),
        ("/main/[s1", "/main/s1", False),  # unclosed: matches nothing
        ("/main/{s1", "/main/s1", False),
        ("//s1", "/main/s1", False),  # OSC 1.1's `//` is not supported
    ],
)
def test_osc_address_patterns(pattern: str, address: str, expected: bool) -> None:
    assert matches(pattern, address) is expected


def test_patterns_match_as_python_osc_matches_them() -> None:
    """The same answers as python-osc's Dispatcher for small random patterns."""
    rng = random.Random(13)
    for _ in range(3000):
        address = "/" + "/".join(
            "".join(rng.choice("ab") for _ in range(rng.randint(1, 3)))
            for _ in range(rng.randint(1, 3))
        )
        pattern = "/" + "".join(rng.choice("ab*?/") for _ in range(rng.randint(0, 7)))
        dispatcher = Dispatcher()
        dispatcher.map(address, print)
        expected = any(True for _ in dispatcher.handlers_for_address(pattern))
        assert matches(pattern, address) is expected, (pattern, address)


def test_a_pattern_that_would_backtrack_is_answered() -> None:
    """Work linear in the lengths: python-osc's regular expressions take years on these."""
    name = "/main/" + "a" * 200
    for pattern in ("/main/" + "*" * 1000 + "x", "/main/" + "*a" * 500 + "q"):
        assert matches(pattern, name) is False
    assert matches("/main/" + "*" * 2000, name) is False  # longer than any address: nothing
