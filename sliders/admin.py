"""The admin, wired to the services so an edit here reaches every open page after it commits."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest
from django.utils.html import format_html

from sliders import addresses, services
from sliders.models import ApiToken, AuditEntry, Board, OscTarget, Preset, ShareLink, Slider


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
    """Every text field of the form (JSON ones included) refuses what the database cannot store.

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
        return formfield


def _storable_text_validator(formfield: forms.Field) -> Any:
    """services.validate_storable_text, leaving NUL in plain text to Django's own message."""
    nul_checked = any(isinstance(v, ProhibitNullCharactersValidator) for v in formfield.validators)

    def validate(value: object) -> None:
        if nul_checked and isinstance(value, str) and "\x00" in value:
            return  # "Null characters are not allowed." is shown already
        services.validate_storable_text(value)

    return validate


class SliderForm(ModelForm[Slider]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # On POST the admin reloads the slider, so without the value the operator saw,
        # `changed_data` would compare against a value someone dragged to meanwhile.
        self.fields["value"].show_hidden_initial = True


class SliderInline(StorableTextAdmin, admin.TabularInline[Slider, Board]):
    model = Slider
    form = SliderForm
    extra = 0
    fields = (
        "position", "slug", "name", "min", "max", "step", "unit", "precision", "value", "version",
        "osc_address", "osc_normalized",
    )  # fmt: skip
    readonly_fields = ("version",)
    ordering = ("position", "id")


TARGET_STATE_FIELDS = ("state", "last_success_at", "last_error", "last_error_at")


class OscTargetInline(StorableTextAdmin, admin.TabularInline[OscTarget, Board]):
    """Where the board's values go over OSC (docs/integrations.md); the state is read-only."""

    model = OscTarget
    extra = 0
    fields = ("host", "port", "rate", "enabled", *TARGET_STATE_FIELDS)
    readonly_fields = TARGET_STATE_FIELDS


@admin.register(Board)
class BoardAdmin(StorableTextAdmin, admin.ModelAdmin[Board]):
    list_display = ("name", "slug", "view_access", "edit_access", "slider_count", "position")
    list_editable = ("position",)
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name", "slug")
    inlines = [SliderInline, OscTargetInline]
    fields = (
        "name", "slug", "view_access", "edit_access", "editors_group", "position", "osc_port",
    )  # fmt: skip

    @admin.display(description="Sliders")
    def slider_count(self, board: Board) -> int:
        return board.sliders.count()

    def save_model(
        self, request: HttpRequest, obj: Board, form: ModelForm[Board], change: bool
    ) -> None:
        services.save_board(board=obj)

    def delete_model(self, request: HttpRequest, obj: Board) -> None:
        services.delete_board(board=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Board]) -> None:
        for board in queryset:
            services.delete_board(board=board)

    def save_formset(
        self,
        request: HttpRequest,
        form: ModelForm[Board],
        formset: BaseInlineFormSet[Any, Board, Any],
        change: bool,
    ) -> None:
        if formset.model is OscTarget:
            formset.save(commit=False)
            for target in formset.deleted_objects:
                services.delete_osc_target(target=target)
            for target in formset.new_objects + [t for t, _ in formset.changed_objects]:
                services.save_osc_target(target=target)
            return
        if formset.model is not Slider:
            super().save_formset(request, form, formset, change)
            return
        formset.save(commit=False)
        for slider in formset.deleted_objects:
            services.delete_slider(slider=slider)
        for slider_form in formset.forms:
            if slider_form in formset.deleted_forms or not slider_form.has_changed():
                continue
            slider = slider_form.instance
            services.save_slider(
                slider=slider,
                requested_value=_requested_value(slider_form),
                actor=_admin_actor(request),
            )


@admin.register(Slider)
class SliderAdmin(StorableTextAdmin, admin.ModelAdmin[Slider]):
    form = SliderForm
    list_display = ("name", "slug", "board", "value", "version", "min", "max", "step", "position")
    list_filter = ("board",)
    list_select_related = ("board",)
    search_fields = ("name", "slug", "board__name")
    fields = (
        "board", "slug", "name", "min", "max", "step", "unit", "precision", "value", "version",
        "position",
    )  # fmt: skip
    readonly_fields = ("version",)

    def save_model(
        self, request: HttpRequest, obj: Slider, form: ModelForm[Slider], change: bool
    ) -> None:
        services.save_slider(
            slider=obj, requested_value=_requested_value(form), actor=_admin_actor(request)
        )

    def delete_model(self, request: HttpRequest, obj: Slider) -> None:
        services.delete_slider(slider=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Slider]) -> None:
        for slider in queryset.select_related("board"):
            services.delete_slider(slider=slider)


@admin.register(OscTarget)
class OscTargetAdmin(StorableTextAdmin, admin.ModelAdmin[OscTarget]):
    """Every board's OSC targets and how each is doing (the state is the bridge runner's)."""

    list_display = ("__str__", "board", "rate", "enabled", *TARGET_STATE_FIELDS)
    list_filter = ("state", "enabled", "board")
    list_select_related = ("board",)
    fields = ("board", "host", "port", "rate", "enabled", *TARGET_STATE_FIELDS)
    readonly_fields = TARGET_STATE_FIELDS

    def save_model(
        self, request: HttpRequest, obj: OscTarget, form: ModelForm[OscTarget], change: bool
    ) -> None:
        services.save_osc_target(target=obj)

    def delete_model(self, request: HttpRequest, obj: OscTarget) -> None:
        services.delete_osc_target(target=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[OscTarget]) -> None:
        for target in queryset.select_related("board"):
            services.delete_osc_target(target=target)


class PresetForm(ModelForm[Preset]):
    class Meta:
        model = Preset
        fields = ("board", "name", "position", "values")

    def clean_values(self) -> dict[str, float]:
        values = self.cleaned_data.get("values")
        if values in (None, "", {}):
            return {}
        if not isinstance(values, dict) or not all(
            isinstance(key, str) and services.is_finite_number(value)
            for key, value in values.items()
        ):
            raise ValidationError('Give an object of slider ids and numbers: {"s1": 20}.')
        return values


@admin.register(Preset)
class PresetAdmin(StorableTextAdmin, admin.ModelAdmin[Preset]):
    """Presets (scenes). A new preset left without values saves the board's current ones."""

    form = PresetForm
    list_display = ("name", "board", "position", "updated_at")
    list_filter = ("board",)
    list_select_related = ("board",)
    search_fields = ("name", "board__name")
    actions = ["recall"]

    def save_model(
        self, request: HttpRequest, obj: Preset, form: ModelForm[Preset], change: bool
    ) -> None:
        if not change and not obj.values:
            saved = services.save_preset(
                board=obj.board, name=obj.name, actor=_admin_actor(request), position=obj.position
            )
            obj.pk, obj.values = saved.pk, saved.values  # the admin goes on with this object
            return
        services.save_preset_from_admin(preset=obj)

    def delete_model(self, request: HttpRequest, obj: Preset) -> None:
        services.delete_preset(preset=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Preset]) -> None:
        for preset in queryset.select_related("board"):
            services.delete_preset(preset=preset)

    @admin.action(description="Recall the selected presets now (in order)")
    def recall(self, request: HttpRequest, queryset: QuerySet[Preset]) -> None:
        for preset in queryset.select_related("board"):
            try:
                changes = services.recall_preset(
                    board=preset.board, name=preset.name, actor=_admin_actor(request)
                )
            except services.Refusal as error:
                self.message_user(request, f"{preset}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"Recalled {preset}: {len(changes)} slider(s) moved.")


def _requested_value(form: ModelForm[Slider]) -> float | None:
    """The form's value if the operator changed it (or creates the slider), else None.

    None keeps the stored value, so saving a name does not undo a drag made since the form opened.
    """
    if form.instance.pk is None or "value" in form.changed_data:
        return form.instance.value
    return None


def _admin_actor(request: HttpRequest) -> services.Actor:
    # An operator: the admin's own permissions decide, not the board's edit access.
    return services.Actor(
        user=request.user,
        source=AuditEntry.Source.ADMIN,
        address=addresses.request_ip(request),
        operator=True,
    )


@admin.register(ShareLink)
class ShareLinkAdmin(StorableTextAdmin, admin.ModelAdmin[ShareLink]):
    """Links that open a board without an account. Revoking one ends the access it gave."""

    list_display = ("for_whom", "board", "kind", "link", "revoked", "created_at")
    list_filter = ("kind", "revoked", "board")
    list_select_related = ("board",)
    fields = ("board", "kind", "label", "revoked", "link", "created_at")
    readonly_fields = ("link", "created_at")
    actions = ["revoke"]

    @admin.display(description="For", ordering="label")
    def for_whom(self, obj: ShareLink) -> str:
        return obj.label or "(no label)"

    @admin.display(description="Link to hand out")
    def link(self, obj: ShareLink) -> str:
        """The link (copy it with the browser's "Copy link"): it carries this site's address."""
        if obj.pk is None:
            return "(made when you save)"
        url = obj.get_absolute_url()
        return format_html('<a href="{}">{}</a>', url, url)

    def save_model(
        self, request: HttpRequest, obj: ShareLink, form: ModelForm[ShareLink], change: bool
    ) -> None:
        services.save_share_link(link=obj)

    def delete_model(self, request: HttpRequest, obj: ShareLink) -> None:
        services.delete_share_link(link=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ShareLink]) -> None:
        for link in queryset.select_related("board"):
            services.delete_share_link(link=link)

    @admin.action(description="Revoke the selected links")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ShareLink]) -> None:
        for link in queryset.select_related("board"):
            link.revoked = True
            services.save_share_link(link=link)
        self.message_user(request, "Revoked. Browsers that used them lose access now.")


@admin.register(ApiToken)
class ApiTokenAdmin(StorableTextAdmin, admin.ModelAdmin[ApiToken]):
    """Tokens for the HTTP API. The secret is shown once, right after the token is made."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked")
    list_filter = ("revoked",)
    list_select_related = ("user",)
    search_fields = ("name", "user__username", "prefix")
    fields = ("user", "name", "revoked", "prefix", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        # A token keeps its user: issue a new one instead.
        return self.readonly_fields + (("user",) if obj is not None else ())

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # A token acts as its user: only superusers may make tokens for someone else.
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model.objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(
        self, request: HttpRequest, obj: ApiToken, form: ModelForm[ApiToken], change: bool
    ) -> None:
        if change:
            obj.save()
            return
        row, token = services.issue_api_token(user=obj.user, name=obj.name)
        obj.pk, obj.prefix, obj.digest = row.pk, row.prefix, row.digest
        self.message_user(
            request,
            f"The API token for {row.user}: {token} (copy it now: it is not shown again).",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = queryset.update(revoked=True)
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin[AuditEntry]):
    """The audit trail: read-only, for everyone with the view permission."""

    list_display = (
        "ended_at", "board", "slider", "who", "source", "from_value", "to_value", "changes",
        "address",
    )  # fmt: skip
    list_filter = ("source", "board")
    search_fields = ("board", "slider", "username", "address")
    date_hierarchy = "ended_at"

    @admin.display(description="Who", ordering="username")
    def who(self, entry: AuditEntry) -> str:
        return entry.username or "anonymous"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
