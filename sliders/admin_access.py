"""The admin of what opens the app to others: share links and API tokens.

Registered with the admin site when sliders/admin.py imports this module.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.html import format_html

from sliders import services
from sliders.admin_text import StorableTextAdmin
from sliders.models import ApiToken, ShareLink


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
