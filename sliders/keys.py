"""Slider keys: the versions under a key never go back (invariant 9).

A slider key is (board slug, slider slug), what clients and every process's fan-out know a
slider by. Both drop an update whose version is not above the one they hold for the key, so a
slider that takes a key someone had before (a slider deleted and made again, renamed or moved
into the key, a board deleted and made again or renamed onto the slug) must start above every
version the key had; else nobody hears it until its version passes its predecessor's.

- `retire` records a key's version in `RetiredSlider` when a slider stops holding it;
- `take` lifts a slider that now holds a key to one above the retired version (it keeps a
  higher version of its own), so a (key, version) pair never names two values.

`sliders.services` calls them where it re-keys a slider with an UPDATE (`save_slider`). The
receivers below cover every `Model.save()` and every deletion Django makes (an instance, a
queryset, a board's cascade; Django sends `pre_delete` for each row once a receiver listens), so
the admin, the services, management commands and a shell all keep the rule. Raw saves
(`loaddata`) and raw SQL are not covered: a fixture brings its own versions and retired keys.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from sliders.models import Board, RetiredSlider, Slider


def retire(*, board: str, slider: str, version: int) -> None:
    """Record that the key (`board`, `slider`) reached `version` (kept as the maximum)."""
    row, created = RetiredSlider.objects.get_or_create(
        board=board, slider=slider, defaults={"version": version}
    )
    if not created:
        RetiredSlider.objects.filter(pk=row.pk, version__lt=version).update(version=version)


def take(*, pk: int, board: str, slider: str, version: int) -> int:
    """Lift the slider `pk`, now holding the key (`board`, `slider`) at `version`, above it.

    Returns the slider's version: `version`, or one more than the key's retired version if that
    is not below it. Call it after the row holds the key, in the same transaction: on
    PostgreSQL a write that takes a key waits for a transaction that is freeing it, so a
    retirement committed meanwhile is seen.
    """
    retired = (
        RetiredSlider.objects.filter(board=board, slider=slider)
        .values_list("version", flat=True)
        .first()
    )
    if retired is None or version > retired:
        return version
    Slider.objects.filter(pk=pk, version__lte=retired).update(version=retired + 1)
    return retired + 1


def _locked(rows: QuerySet[Any]) -> QuerySet[Any]:
    """`rows` locked until the transaction ends (no transaction in a shell: nothing to hold)."""
    return rows if transaction.get_autocommit() else rows.select_for_update(of=("self",))


@receiver(pre_delete, sender=Slider, dispatch_uid="sliders.keys.slider_deleted")
def _slider_deleted(sender: type[Slider], instance: Slider, **kwargs: Any) -> None:
    # The stored key and version, not the instance's: an admin form loaded minutes ago holds
    # the version of then. Locked, so a set cannot slip in before the row goes.
    stored = (
        _locked(Slider.objects.filter(pk=instance.pk))
        .values_list("board__slug", "slug", "version")
        .first()
    )
    if stored is not None:
        retire(board=stored[0], slider=stored[1], version=stored[2])


@receiver(pre_save, sender=Slider, dispatch_uid="sliders.keys.slider_saving")
def _slider_saving(sender: type[Slider], instance: Slider, raw: bool, **kwargs: Any) -> None:
    instance._takes_key = False  # type: ignore[attr-defined]
    if raw:
        return
    stored = None
    if instance.pk is not None:
        stored = (
            _locked(Slider.objects.filter(pk=instance.pk))
            .values_list("board_id", "board__slug", "slug", "version")
            .first()
        )
    if stored is None:  # a new row takes its key
        instance._takes_key = True  # type: ignore[attr-defined]
        return
    # save() writes every field: a stale instance (loaded before some sets) must not take the
    # version back, whatever else it writes.
    instance.version = max(instance.version, stored[3])
    if (stored[0], stored[2]) != (instance.board_id, instance.slug):
        retire(board=stored[1], slider=stored[2], version=stored[3])
        instance._takes_key = True  # type: ignore[attr-defined]


@receiver(post_save, sender=Slider, dispatch_uid="sliders.keys.slider_saved")
def _slider_saved(sender: type[Slider], instance: Slider, **kwargs: Any) -> None:
    if getattr(instance, "_takes_key", False):
        instance._takes_key = False  # type: ignore[attr-defined]
        instance.version = take(
            pk=instance.pk, board=instance.board.slug, slider=instance.slug,
            version=instance.version,
        )  # fmt: skip


@receiver(pre_save, sender=Board, dispatch_uid="sliders.keys.board_saving")
def _board_saving(sender: type[Board], instance: Board, raw: bool, **kwargs: Any) -> None:
    # A board's slug is part of each of its sliders' keys: renaming it re-keys them all.
    instance._old_slug = None  # type: ignore[attr-defined]
    if raw or instance.pk is None:
        return
    old_slug = Board.objects.filter(pk=instance.pk).values_list("slug", flat=True).first()
    if old_slug is None or old_slug == instance.slug:
        return
    for slug, version in _locked(Slider.objects.filter(board_id=instance.pk)).values_list(
        "slug", "version"
    ):
        retire(board=old_slug, slider=slug, version=version)
    instance._old_slug = old_slug  # type: ignore[attr-defined]


@receiver(post_save, sender=Board, dispatch_uid="sliders.keys.board_saved")
def _board_saved(sender: type[Board], instance: Board, **kwargs: Any) -> None:
    if getattr(instance, "_old_slug", None) is None:
        return
    instance._old_slug = None  # type: ignore[attr-defined]
    for pk, slug, version in Slider.objects.filter(board_id=instance.pk).values_list(
        "pk", "slug", "version"
    ):
        take(pk=pk, board=instance.slug, slider=slug, version=version)
