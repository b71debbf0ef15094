"""What every admin form of the app shares: text the database can store, help text shown as text.

`StorableTextAdmin` is the base of the app's model admins (sliders/admin.py,
sliders/admin_access.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import admin
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.http import HttpRequest
from django.utils.html import conditional_escape

from sliders import services


class _EscapedJSONField(forms.JSONField):
    """Django's JSON form field, showing JSON again with \\u escapes where it must.

    Django redisplays a refused JSON value with ensure_ascii=False; one holding a lone surrogate
    (from a "\\ud83c" escape) then cannot be encoded into the page, and the form error
    becomes a server error.
    """

    def prepare_value(self, value: Any) -> Any:
        text = super().prepare_value(value)
        if isinstance(text, str) and _SURROGATE.search(text):
            return json.dumps(value, cls=self.encoder)  # ASCII only: "\\ud83c"
        return text


_SURROGATE = re.compile("[\ud800-\udfff]")


class StorableTextAdmin(admin.options.BaseModelAdmin[Any]):
    """Every text field of the form (JSON ones included) refuses what the database cannot store,
    and every help text is shown as the text it is (Django's admin takes it as HTML).

    The rule is services.unstorable_character; it is added to the form fields rather than the
    model fields, which would need a migration. Django's own forms already refuse NUL in plain
    text fields, and form bodies cannot carry a lone surrogate (Django decodes them with
    replacement characters), so there it adds the control characters; in JSON, which Django
    decodes from `\\u` escapes, it catches all of them.
    """

    formfield_overrides = {models.JSONField: {"form_class": _EscapedJSONField}}

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if isinstance(formfield, forms.CharField):  # SlugField and JSONField too
            formfield.validators.append(_storable_text_validator(formfield))
        if formfield is not None:
            # The admin puts help text into the page as HTML; ours is text ("/b/<slug>/").
            formfield.help_text = conditional_escape(formfield.help_text)
        return formfield


def _storable_text_validator(formfield: forms.Field) -> Any:
    """services.validate_storable_text, leaving NUL in plain text to Django's own message."""
    nul_checked = any(isinstance(v, ProhibitNullCharactersValidator) for v in formfield.validators)

    def validate(value: object) -> None:
        if nul_checked and isinstance(value, str) and "\x00" in value:
            return  # "Null characters are not allowed." is shown already
        services.validate_storable_text(value)

    return validate
