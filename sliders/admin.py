"""The admin, wired to the services so an edit here reaches every open page after it commits.

Boards, sliders, presets and the audit trail; the bridges (OSC targets, MQTT brokers, webhooks)
are in sliders/admin_bridges.py, share links and API tokens in sliders/admin_access.py, the
forms' shared text rules in sliders/admin_text.py.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from sliders import (
    addresses,
    admin_access,  # noqa: F401  (registers share links and API tokens)
    admin_bridges,
    services,
)
from sliders.admin_text import StorableTextAdmin
from sliders.models import AuditEntry, Board, Preset, Slider


class SliderForm(ModelForm[Slider]):
    """A slider's fields, with the services' range rule and the value clamped into a new range.

    A value the operator left as it was is clamped into the (new) range here, so narrowing a
    range is not refused; the service stores the value clamped and snapped (from what is stored
    by then), and the admin says so. A value the operator typed outside the range is refused.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # On POST the admin reloads the slider, so without the value the operator saw,
        # `changed_data` would compare against a value someone dragged to meanwhile.
        self.fields["value"].show_hidden_initial = True
        if self.instance.pk is None:
            position = self.fields["position"]
            position.required = False
            position.help_text = "Leave empty to put it after the board's last slider."
            self.initial["position"] = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        minimum, maximum, step = (cleaned.get(name) for name in ("min", "max", "step"))
        if minimum is None or maximum is None or step is None or minimum >= maximum or step <= 0:
            return cleaned  # the model's constraints say what is wrong
        try:
            services.check_range(minimum=minimum, maximum=maximum, step=step)
        except services.Refusal as refusal:
            self.add_error("step", refusal.message)
            return cleaned
        if "value" not in self.changed_data and services.is_finite_number(cleaned.get("value")):
            cleaned["value"] = services.normalize_value(
                cleaned["value"], minimum=minimum, maximum=maximum, step=step
            )
        return cleaned


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


@admin.register(Board)
class BoardAdmin(StorableTextAdmin, admin.ModelAdmin[Board]):
    list_display = ("name", "slug", "view_access", "edit_access", "slider_count", "position")
    list_editable = ("position",)
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name", "slug")
    inlines = [SliderInline, *admin_bridges.BRIDGE_INLINES]
    fields = (
        "name", "slug", "view_access", "edit_access", "editors_group", "position", "osc_port",
    )  # fmt: skip

    class Media:
        css = {"all": ["sliders/admin/admin.css"]}  # the sliders' table fits the window

    @admin.display(description="Sliders")
    def slider_count(self, board: Board) -> int:
        return board.sliders.count()

    def save_model(
        self, request: HttpRequest, obj: Board, form: ModelForm[Board], change: bool
    ) -> None:
        changed = not change or form.has_changed()
        services.save_board(board=obj, changed=changed, actor=_admin_actor(request))

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
        if admin_bridges.save_bridge_formset(formset):
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
            _save_slider(request, slider_form)


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
        _save_slider(request, form)

    def delete_model(self, request: HttpRequest, obj: Slider) -> None:
        services.delete_slider(slider=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Slider]) -> None:
        for slider in queryset.select_related("board"):
            services.delete_slider(slider=slider)


class PresetForm(ModelForm[Preset]):
    """A preset: its name free on its board (ignoring case), its values checked against the
    board's sliders (services.check_admin_preset); refusals are form errors."""

    class Meta:
        model = Preset
        fields = ("board", "name", "position", "values")

    def clean_values(self) -> Any:
        values = self.cleaned_data.get("values")
        return {} if values in (None, "") else values

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        board, name = cleaned.get("board"), cleaned.get("name")
        if board is None or not isinstance(name, str) or self.has_error("values"):
            return cleaned
        # A new preset left without values takes the board's current ones (PresetAdmin).
        values = cleaned.get("values") or {}
        candidate = Preset(pk=self.instance.pk, board=board, name=name, values=values)
        try:
            services.check_admin_preset(candidate)
        except services.Refusal as error:
            field = "name" if error.code in ("preset_exists", "bad_request") else "values"
            self.add_error(field, error.message)
            return cleaned
        cleaned["name"] = candidate.name
        if values:
            cleaned["values"] = candidate.values  # snapped to the step grid
        return cleaned

    def validate_unique(self) -> None:
        # The database's constraint compares names with SQL lower(); clean() has compared them
        # with the services' name_key already, which is as strict (it counts a dotted capital I
        # as an i, as PostgreSQL's lower() does), and says so in the words of the service.
        pass


@admin.register(Preset)
class PresetAdmin(StorableTextAdmin, admin.ModelAdmin[Preset]):
    """Presets (scenes). A new preset left without values saves the board's current ones.

    Names are unique per board regardless of case; values name sliders of the board, within
    their ranges (services.presets). Editing a preset is the admin's way to replace one.
    """

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
            saved, _ = services.save_preset(
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
                recall = services.recall_preset(
                    board=preset.board, name=preset.name, actor=_admin_actor(request)
                )
            except services.Refusal as error:
                self.message_user(request, f"{preset}: {error.message}", messages.ERROR)
                continue
            self.message_user(request, f"Recalled {preset}: {len(recall.changes)} slider(s) moved.")
            if recall.skipped or recall.adjusted:
                self.message_user(request, f"{preset}: {_recall_note(recall)}", messages.WARNING)


def _recall_note(recall: services.Recall) -> str:
    """What a recall could not take as saved, in words (the page says it the same way)."""
    parts = []
    if recall.skipped:
        parts.append(f"skipped {', '.join(recall.skipped)} (no longer on the board)")
    if recall.adjusted:
        fitted = ", ".join(f"{a['id']} {a['saved']:g} → {a['value']:g}" for a in recall.adjusted)
        parts.append(f"fitted to the slider as it is now: {fitted}")
    text = "; ".join(parts)
    return f"{text[:1].upper()}{text[1:]}."


def _save_slider(request: HttpRequest, form: ModelForm[Slider]) -> None:
    """Save the form's slider through the service; say so when its value had to move.

    A value the operator did not touch is kept, clamped into a narrower range and snapped to a
    new step: the operator sees where it went (and the form shows it after the save).
    """
    slider = form.instance
    requested = _requested_value(form)
    change = services.save_slider(
        slider=slider, requested_value=requested, actor=_admin_actor(request)
    )
    if requested is None and change.changed:
        messages.warning(
            request,
            f"{slider.name} ({slider.slug}): its value did not fit the new range or step, "
            f"so it is now {slider.format_value(change.value)}.",
        )


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
