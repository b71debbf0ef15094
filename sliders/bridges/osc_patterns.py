"""OSC address patterns matched against sliders' addresses, in time linear in their length.

An incoming OSC message names an *address pattern* (OSC 1.0): in each part between slashes,
`?` is any one character, `*` any run of characters, `[abc]`, `[a-z]` and `[!abc]` one character
of (or not of) a set, `{foo,bar}` one of the strings. python-osc's Dispatcher turns a pattern into
a regular expression whose backtracking grows exponentially with the number of `*` in a part:
one datagram of 40 bytes (`/main/******************************x`) held the event loop for
minutes. Here each part is matched by tracking the set of positions of the address part that the
pattern read so far can reach (a bit mask), one pattern character at a time: no backtracking.
Patterns longer than `MAX_PATTERN` characters match nothing (no slider address is that long).
OSC 1.1's `//` (any number of parts) is not supported: it matches nothing.

A slider's own address is a plain one (`plain_osc_address`, the admin's check): parts of
printable ASCII without spaces or pattern characters, so it only ever matches itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.core.validators import RegexValidator

MAX_PATTERN = 1024  # characters; a slider's address is at most a few hundred
PATTERN_CHARACTERS = frozenset("*?[]{}")
# OSC 1.0: an address part is printable ASCII but for space # * , / ? [ ] { }.
_PART_CHARACTERS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#*,/?[]{}")

plain_osc_address = RegexValidator(
    rf"\A(?:/[{re.escape(_PART_CHARACTERS)}]+)+\Z",
    "An OSC address is /part/part...: each part printable ASCII letters, digits and signs, "
    "without spaces or the characters # * , ? [ ] { } (which are for patterns).",
)


def is_pattern(address: str) -> bool:
    """Whether `address` holds a pattern character (else it only matches itself)."""
    return not PATTERN_CHARACTERS.isdisjoint(address)


def matches(pattern: str, address: str) -> bool:
    """Whether the OSC address `pattern` matches the plain `address` (see the module).

    A malformed pattern (an unclosed `[` or `{`) or one longer than `MAX_PATTERN` matches
    nothing; it never raises.
    """
    if len(pattern) > MAX_PATTERN:
        return False
    parts, names = pattern.split("/"), address.split("/")
    return len(parts) == len(names) and all(map(_part_matches, parts, names))


def _part_matches(pattern: str, name: str) -> bool:
    """One part (between slashes): bit j of `reach` is set when the pattern read so far can
    have consumed exactly the first j characters of `name`."""
    if not is_pattern(pattern):
        return pattern == name
    n = len(name)
    every = (1 << (n + 1)) - 1  # positions 0..n

    def after(test: Callable[[str], bool]) -> int:
        """The positions right after a character of `name` that passes `test`."""
        return sum(1 << (j + 1) for j, ch in enumerate(name) if test(ch))

    reach, i = 1, 0
    while i < len(pattern) and reach:
        c = pattern[i]
        if c == "*":
            reach = every & ~((reach & -reach) - 1)  # the lowest reachable position, and on
        elif c == "?":
            reach = (reach << 1) & every
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                return False
            reach = (reach << 1) & after(_character_set(pattern[i + 1 : end]))
            i = end
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end == -1:
                return False
            reach = _after_one_of(set(pattern[i + 1 : end].split(",")), name, reach) & every
            i = end
        else:
            reach = (reach << 1) & after(c.__eq__)
        i += 1
    return i == len(pattern) and bool(reach >> n & 1)


def _character_set(spec: str) -> Callable[[str], bool]:
    """The test of a `[...]` (without its brackets): characters and ranges, `!` first negates;
    a `-` first or last is itself."""
    negated = spec.startswith("!")
    if negated:
        spec = spec[1:]
    singles: set[str] = set()
    ranges: list[tuple[str, str]] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            ranges.append((spec[i], spec[i + 2]))
            i += 3
        else:
            singles.add(spec[i])
            i += 1

    def test(ch: str) -> bool:
        inside = ch in singles or any(low <= ch <= high for low, high in ranges)
        return inside != negated

    return test


def _after_one_of(options: set[str], name: str, reach: int) -> int:
    """The positions reached from `reach` by reading one of `options` in `name`."""
    lengths = {len(option) for option in options}
    result = 0
    for j in range(len(name) + 1):
        if reach >> j & 1:
            for length in lengths:
                if j + length <= len(name) and name[j : j + length] in options:
                    result |= 1 << (j + length)
    return result
