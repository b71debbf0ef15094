"""The admin of what opens the app to others: share links and API tokens.

Registered with the admin site when sliders/admin.py imports this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet, Value
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from sliders import services
from sliders.admin_text import StorableTextAdmin
from sliders.models import ApiToken, ShareLink


class RevocationFilter(admin.SimpleListFilter):
    """Filter links or tokens by state: active or revoked."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("active", "revoked"):
            return queryset.filter(revoked=self.value() == "revoked")
        return queryset


# The site's own address as the request reached it (scheme and host, behind a proxy as the
# proxy forwarded them): put on each share link the admin loads, to show the whole link.
_SITE = "site_root"


@admin.register(ShareLink)
class ShareLinkAdmin(StorableTextAdmin, admin.ModelAdmin[ShareLink]):
    """Links that open a board without an account. Revoking one ends the access it gave."""

    list_display = ("for_whom", "board", "kind", "link", "state")
    list_filter = ("kind", RevocationFilter, "board")
    list_select_related = ("board",)
    fields = ("board", "kind", "label", "revoked", "state", "link", "created_at")
    readonly_fields = ("link", "state", "created_at")
    actions = ["revoke"]

    class Media:
        css = {"all": ["sliders/admin/admin.css"]}  # the whole link wraps in its column
        js = ["sliders/admin/copy.js"]  # the link's Copy button

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShareLink]:
        site = request.build_absolute_uri("/").rstrip("/")
        links: QuerySet[ShareLink] = super().get_queryset(request)
        return links.annotate(**{_SITE: Value(site)})

    @admin.display(description="For", ordering="label")
    def for_whom(self, obj: ShareLink) -> str:
        return obj.label or "(no label)"

    @admin.display(description="Link to hand out")
    def link(self, obj: ShareLink) -> str:
        """The whole link (scheme, host, path) and a button that copies it."""
        if obj.pk is None:
            return "(made when you save)"
        url = getattr(obj, _SITE, "") + obj.get_absolute_url()
        return format_html(
            '<a href="{}" class="share-link">{}</a> '
            '<button type="button" class="button" data-copy="{}">Copy</button>',
            url,
            url,
            url,
        )

    @admin.display(description="State", ordering="revoked")
    def state(self, obj: ShareLink) -> str:
        return revocation_state(obj.revoked, obj.revoked_at)

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

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "state")
    list_filter = (RevocationFilter,)
    list_select_related = ("user",)
    search_fields = ("name", "user__username", "prefix")
    fields = ("user", "name", "revoked", "state", "prefix", "created_at", "last_used_at")
    readonly_fields = ("prefix", "state", "created_at", "last_used_at")
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
            obj.revoked_at = (obj.revoked_at or timezone.now()) if obj.revoked else None
            obj.save()
            return
        row, token = services.issue_api_token(user=obj.user, name=obj.name)
        obj.pk, obj.prefix, obj.digest = row.pk, row.prefix, row.digest
        self.message_user(
            request,
            f"The API token for {row.user}: {token} (copy it now: it is not shown again).",
            messages.WARNING,
        )

    @admin.display(description="State", ordering="revoked")
    def state(self, obj: ApiToken) -> str:
        return revocation_state(obj.revoked, obj.revoked_at)

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = queryset.filter(revoked=False).update(revoked=True, revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).")


def revocation_state(revoked: bool, revoked_at: datetime | None) -> str:
    """A link's or token's state as people say it: "Active", "Revoked on 30 Nov 2026, 22:04"
    (in the site's time zone), or "Revoked" when it was revoked before the date was kept.
    """
    if not revoked:
        return "Active"
    if revoked_at is None:
        return "Revoked"
    return f"Revoked on {date_format(timezone.localtime(revoked_at), 'DATETIME_FORMAT')}"
