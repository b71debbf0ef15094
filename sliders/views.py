"""Pages: the board index and one board, rendered with current values for a correct first paint."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from sliders.models import Board


def index(request: HttpRequest) -> HttpResponse:
    # An aggregate drops the model's default ordering, so say it again.
    boards = Board.objects.annotate(slider_count=Count("sliders")).order_by("position", "name")
    return render(request, "sliders/index.html", {"boards": boards})


def board(request: HttpRequest, slug: str) -> HttpResponse:
    board = get_object_or_404(Board, slug=slug)
    return render(
        request,
        "sliders/board.html",
        {
            "board": board,
            "sliders": list(board.sliders.all()),
            "can_edit": board.user_can_edit(request.user),
        },
    )
