"""The one rule for text the database cannot store, and the checks built on it.

Every text a client sends that reaches the database (names, labels, units, lookups by name) is
checked here first: a lone surrogate would make the database driver raise UnicodeEncodeError and
NUL a DataError, neither of which may pass for a malformed packet or an unavailable database.
"""

from __future__ import annotations

import re

from sliders.services.errors import Refusal

# Characters no text of ours may hold (names, labels, units, lookups by name):
# - U+D800..U+DFFF, lone surrogates ("\\ud83c", half an emoji, as JSON.stringify writes it): not
#   encodable in UTF-8, so neither SQLite's driver nor PostgreSQL's can send them;
# - U+0000 (NUL): PostgreSQL refuses it in text, and it ends C strings;
# - the other C0 controls (tab and newline included), DEL and the C1 controls: our texts are
#   one-line labels, and these only serve to forge log lines or terminal output.
_UNSTORABLE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def unstorable_character(text: str) -> str | None:
    """Why `text` cannot be stored, naming its first refused character; None if it can.

    The message reads like "character 6 is U+D83C, half of a surrogate pair (an emoji cut in
    two?)": positions count from 1, in code points.
    """
    found = _UNSTORABLE_TEXT.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        kind = "half of a surrogate pair (an emoji cut in two?)"
    elif code == 0:
        kind = "a NUL character"
    else:
        kind = "a control character"
    return f"character {found.start() + 1} is U+{code:04X}, {kind}"


def check_text(text: str, *, field: str) -> str:
    """Return `text` if it can be stored and looked up, else raise Refusal("invalid_value").

    For every text a client sends that reaches the database, before it does: a lone surrogate
    would make the database driver raise UnicodeEncodeError and NUL a DataError, neither of
    which may pass for a malformed packet or an unavailable database.
    """
    problem = unstorable_character(text)
    if problem is not None:
        raise Refusal("invalid_value", f"The {field} cannot be stored: {problem}.")
    return text


def validate_storable_text(value: object) -> None:
    """Django validator: refuse text (or JSON holding text, keys included) `check_text` refuses.

    Raises django.core.exceptions.ValidationError. For the admin's form fields; a validator on
    a model field would need a migration.
    """
    from django.core.exceptions import ValidationError

    for text in _texts_in(value):
        problem = unstorable_character(text)
        if problem is not None:
            raise ValidationError(
                "This text cannot be stored: %(problem)s.",
                code="unstorable_text",
                params={"problem": problem},
            )


def _texts_in(value: object) -> list[str]:
    """The strings in `value`: itself, or those in a JSON structure (keys and values)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (*_texts_in(key), *_texts_in(item))]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _texts_in(item)]
    return []
