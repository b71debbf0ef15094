"""Hypothesis strategies for what a hostile client may put in a Socket.IO packet."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import strategies as st

# python-engineio's JSON parser refuses integers written with more than 100 characters (a
# denial-of-service guard): such a packet is malformed and closes the connection, which
# test_invariants covers. The property tests stay within what a packet may carry.
INTEGERS = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-(10**99) + 1, max_value=10**99 - 1),
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    INTEGERS,
    st.floats(),  # NaN, ±Infinity, -0.0, subnormals
    st.text(max_size=20),
)


@functools.cache
def json_like(depth: int) -> st.SearchStrategy[Any]:
    """JSON-like values nested at most `depth` levels deep."""
    if depth == 0:
        return LEAVES
    inner = json_like(depth - 1)
    return st.one_of(
        LEAVES,
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=8), inner, max_size=3),
    )
