"""The HTTP API for scripts and integrations (django-ninja), served under /api/.

The same rules as the board page: the same services, permissions, rate limit, error codes and
broadcasts. Who is asking: an `Authorization: Bearer <token>` (tokens are made in the admin), else
the browser's session (writes then need the CSRF token), else an anonymous visitor, who may do
what anonymous pages may. A wrong or revoked token is refused, never treated as anonymous.
The generated OpenAPI document is at /api/openapi.json and browsable at /api/docs.

Longer than 400 lines because every endpoint, its schema and its error mapping sit together,
which is how the OpenAPI document is read; splitting the schemas off would scatter one endpoint
over two files.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, URLPattern, URLResolver, resolve
from django.views.decorators.csrf import csrf_exempt
from ninja import Field, NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, SessionAuth

from sliders import addresses, fades, metrics, notices, origins, selectors, services
from sliders.models import AuditEntry, Board
from sliders.ratelimit import TokenBucket

STATUS_OF = {
    "bad_request": 400,
    "invalid_value": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "unknown_board": 404,
    "unknown_slider": 404,
    "unknown_preset": 404,
    "not_found": 404,  # an address under /api/ with no endpoint
    "method_not_allowed": 405,
    "conflict": 412,  # only a PUT with If-Match can meet one
    "preset_exists": 428,  # replacing a preset must be asked for (If-Match or ?overwrite=true)
    "rate_limited": 429,
    "unavailable": 503,
}


class ApiRequest(HttpRequest):
    """A request as the API's views see it (a type for annotations; never instantiated).

    django-ninja sets `auth` to what the authenticator that accepted the request returned: the
    token's or the session's user, else AnonymousUser (`anonymous`). BearerToken also sets
    `api_client`, the token's rate-limit key; requests without a token have none.
    """

    auth: AbstractUser | AnonymousUser
    api_client: str


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>` with a token from the admin (API tokens)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = services.user_for_api_token(token)
        if user is None:
            raise AuthenticationError(401, "This API token is not valid (wrong or revoked).")
        # The request the API's views get next: ApiRequest describes what ninja adds to it.
        cast(ApiRequest, request).api_client = services.api_client_of(token)
        return user


class BrowserSession(SessionAuth):
    """A signed-in browser: its session cookie, with Django's CSRF check on writes."""

    def __call__(self, request: HttpRequest) -> Any:
        if not request.user.is_authenticated:
            return None  # no session to check a CSRF token against: maybe anonymous
        return super().__call__(request)


def anonymous(request: HttpRequest) -> Any:
    """No token and no session: an anonymous visitor (refused where anonymous pages are).

    A write from another site's page is refused, as sockets from foreign origins are: a browser
    on the LAN must not become a way in for a site that cannot reach the server itself.
    """
    if request.headers.get("Authorization"):
        raise AuthenticationError(401, "Send the API token as 'Authorization: Bearer <token>'.")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        environ = {**request.META, "asgi.scope": getattr(request, "scope", {})}
        environ.setdefault("HTTP_HOST", request.META.get("SERVER_NAME", ""))
        if not origins.is_allowed_origin(request.headers.get("Origin"), environ):
            raise HttpError(403, "Requests from other sites are refused.")
    return AnonymousUser()


api = NinjaAPI(
    title="Slider Sync API",
    version="1",
    description=(
        "Read and set the sliders of Slider Sync boards, and save and recall presets. Every "
        "change goes through the same service as the board page and reaches every open page "
        "at once."
    ),
    auth=[BearerToken(), BrowserSession(csrf=True), anonymous],
    urls_namespace="api",
)


# --- Errors -------------------------------------------------------------------------------------


class ErrorOut(Schema):
    ok: bool = False
    error: str = Field(description="A code from docs/api.md, e.g. forbidden.")
    message: str = Field(description="For people; may change.")


def error_response(
    request: HttpRequest, code: str, message: str, details: dict[str, Any] | None = None
) -> HttpResponse:
    return api.create_response(
        request,
        {"ok": False, "error": code, "message": message, **(details or {})},
        status=STATUS_OF.get(code, 400),
    )


@api.exception_handler(services.Refusal)
def on_slider_error(request: HttpRequest, error: services.Refusal) -> HttpResponse:
    response = error_response(request, error.code, error.message, error.details)
    if error.code == "conflict" and isinstance(error.details.get("version"), int):
        response["ETag"] = etag(error.details["version"])  # the current state's, to retry with
    return response


def _count_refused_set(request: HttpRequest, code: str) -> None:
    if request.method == "PUT" and "/sliders/" in request.path:  # counted with socket sets
        metrics.SETS.labels(code).inc()


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    # A `value` that is there but not a finite number is invalid_value, as on the socket;
    # anything else (no value, a body that is not an object) is bad_request.
    code = (
        "invalid_value"
        if any("value" in (e.get("loc") or ()) and e.get("type") != "missing" for e in error.errors)
        else "bad_request"
    )
    _count_refused_set(request, code)
    first = error.errors[0] if error.errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    return error_response(request, code, f"{where}: {first.get('msg', 'invalid')}".strip(": "))


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return error_response(request, "unauthorized", str(error.message))


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    code = "forbidden" if error.status_code == 403 else "bad_request"
    return api.create_response(
        request, {"ok": False, "error": code, "message": str(error)}, status=error.status_code
    )


@api.exception_handler(DatabaseError)
def on_database_error(request: HttpRequest, error: DatabaseError) -> HttpResponse:
    _count_refused_set(request, "unavailable")
    return error_response(request, "unavailable", "The database cannot be reached right now.")


# --- Schemas ------------------------------------------------------------------------------------


class SliderOut(Schema):
    id: str
    name: str
    min: float
    max: float
    step: float
    value: float
    version: int
    unit: str
    precision: int | None


class PresetOut(Schema):
    name: str


class BoardSummaryOut(Schema):
    slug: str
    name: str
    can_edit: bool


class BoardOut(Schema):
    board: str
    name: str
    can_edit: bool
    sliders: list[SliderOut]
    presets: list[PresetOut]


class SetIn(Schema):
    value: float = Field(
        strict=True,
        allow_inf_nan=False,
        description="Clamped to the slider's range and snapped to its step, as on the page.",
    )


class SetOut(Schema):
    ok: bool = True
    id: str
    value: float
    version: int


class ConflictOut(ErrorOut):
    id: str
    value: float = Field(description="The value stored now.")
    version: int = Field(description="The version stored now (also the response's ETag).")


class RecallIn(Schema):
    fade: float = Field(
        0,
        ge=0,
        le=fades.MAX_FADE_SECONDS,
        strict=True,
        description="Seconds to fade over; 0 recalls at once.",
    )


class PresetDetailOut(Schema):
    name: str = Field(description="As stored (names are unique per board regardless of case).")
    values: dict[str, Any] = Field(description="Slider id to value (numbers).")
    position: int


class PresetIn(Schema):
    values: dict[str, Any] | None = Field(
        None,
        description=(
            "Slider id to value; every id a slider of the board, every value a finite number "
            "within its range (stored snapped to its step). Left out: the board's current values."
        ),
    )


class PresetSavedOut(PresetDetailOut):
    ok: bool = True
    created: bool = Field(description="True for a new preset (201), false for a replaced one.")


class AdjustedOut(Schema):
    id: str
    saved: float = Field(description="The value in the preset.")
    value: float = Field(description="What the slider was set to (clamped, snapped).")


class RecallOut(Schema):
    ok: bool = True
    name: str = Field(description="The preset's name as stored.")
    skipped: list[str] = Field(description="Sliders in the preset that the board no longer has.")
    adjusted: list[AdjustedOut] = Field(
        description="Saved values that no longer fit their slider's range or step."
    )


# --- Endpoints ----------------------------------------------------------------------------------

ERRORS = {status: ErrorOut for status in (400, 401, 403, 404, 429, 503)}


@api.get("/boards", response={200: list[BoardSummaryOut], **ERRORS}, summary="List boards")
def list_boards(request: ApiRequest) -> list[dict[str, Any]]:
    """The boards this user may view, in display order."""
    user = request.auth
    return [
        {"slug": b.slug, "name": b.name, "can_edit": b.user_can_edit(user)}
        for b in selectors.visible_boards(user)
    ]


@api.get("/boards/{slug}", response={200: BoardOut, **ERRORS}, summary="Read a board")
def read_board(request: ApiRequest, slug: str) -> dict[str, Any]:
    """A board with its sliders (in display order) and presets."""
    return selectors.board_payload(_viewable_board(request, slug), user=request.auth)


@api.get(
    "/boards/{slug}/sliders/{slider_id}",
    response={200: SliderOut, **ERRORS},
    summary="Read a slider",
)
def read_slider(
    request: ApiRequest, response: HttpResponse, slug: str, slider_id: str
) -> dict[str, Any]:
    """A slider; its `ETag` is its version, for a later `PUT` with `If-Match`."""
    board = _viewable_board(request, slug)
    slider = board.sliders.filter(slug=slider_id).first()
    if slider is None:
        raise services.Refusal("unknown_slider", f"There is no slider '{slider_id}' here.")
    response["ETag"] = etag(slider.version)
    return selectors.slider_payload(slider)


@api.put(
    "/boards/{slug}/sliders/{slider_id}",
    response={200: SetOut, 412: ConflictOut, **ERRORS},
    summary="Set a slider",
)
def set_slider(
    request: ApiRequest, response: HttpResponse, slug: str, slider_id: str, body: SetIn
) -> dict[str, Any]:
    """Store a new value (after commit every open page shows it) and return what was stored.

    With `If-Match` (the `ETag` of an earlier read, RFC 9110 §13.1.1) the value is stored only
    if the slider is still at that version, else 412 with the current state and its `ETag`;
    a value that is stored already is answered 200 either way. The response's `ETag` is the
    stored version.
    """
    try:
        _viewable_board(request, slug)
        if_match = parse_if_match(request.headers.get("If-Match"))
        _take_token(request)
        change = services.set_slider_value(
            board=slug,
            slider_id=slider_id,
            value=body.value,
            actor=_actor(request),
            if_match=if_match,
        )
    except services.Refusal as error:
        metrics.SETS.labels(error.code).inc()
        raise
    metrics.SETS.labels("ok").inc()
    response["ETag"] = etag(change.version)
    return change.as_ack()


@api.get(
    "/boards/{slug}/presets/{name}",
    response={200: PresetDetailOut, **ERRORS},
    summary="Read a preset",
)
def read_preset(
    request: ApiRequest, response: HttpResponse, slug: str, name: str
) -> dict[str, Any]:
    """A preset (its name is matched ignoring case); its `ETag`, for a `PUT` with `If-Match`."""
    _viewable_board(request, slug)
    preset = services.find_preset(slug, name)
    if preset is None:
        raise services.Refusal("unknown_preset", f"There is no preset '{name[:100]}' here.")
    response["ETag"] = f'"{services.preset_tag(preset)}"'
    return {"name": preset.name, "values": preset.values, "position": preset.position}


@api.put(
    "/boards/{slug}/presets/{name}",
    response={200: PresetSavedOut, 201: PresetSavedOut, 412: ErrorOut, 428: ErrorOut, **ERRORS},
    summary="Save a preset",
)
def save_preset(
    request: ApiRequest,
    response: HttpResponse,
    slug: str,
    name: str,
    body: PresetIn,
    overwrite: bool = False,
) -> Status[dict[str, Any]]:
    """Save `values` (or the board's current ones) as a preset; 201 when it is new.

    A preset of that name (ignoring case) is never replaced silently: without `If-Match` or
    `?overwrite=true` the answer is 428 `preset_exists`. `If-Match` with the preset's `ETag`
    replaces it only as it was read (else 412 `conflict`), `If-Match: *` any preset of that
    name (412 if there is none); `?overwrite=true` creates or replaces.
    """
    _viewable_board(request, slug)
    if_match = _preset_if_match(request.headers.get("If-Match"))
    _take_token(request)
    preset, created = services.save_preset(
        board=slug,
        name=name,
        values=body.values,
        actor=_actor(request),
        overwrite=overwrite,
        if_match=if_match,
    )
    response["ETag"] = f'"{services.preset_tag(preset)}"'
    saved = {"name": preset.name, "values": preset.values, "position": preset.position}
    return Status(201 if created else 200, {"ok": True, "created": created, **saved})


@api.post(
    "/boards/{slug}/presets/{name}/recall",
    response={200: RecallOut, **ERRORS},
    summary="Recall a preset",
)
def recall_preset(request: ApiRequest, slug: str, name: str, body: RecallIn) -> dict[str, Any]:
    """Set the preset's values at once (one transaction, one message to every page) or fade.

    The preset's name is matched ignoring case. The answer says which sliders were skipped
    (removed since the preset was saved) and which saved values were fitted to their slider.
    """
    _viewable_board(request, slug)
    _take_token(request)
    actor = _actor(request)
    if body.fade == 0:
        return services.recall_preset(board=slug, name=name, actor=actor).as_ack()
    recall = services.plan_recall(board=slug, name=name, actor=actor)
    if not notices.run_on_server_loop(
        fades.fade_to(slug, recall.name, recall.targets, body.fade, actor)
    ):
        raise services.Refusal("unavailable", "Fades need the realtime server to be running.")
    return recall.as_ack()


# --- Helpers ------------------------------------------------------------------------------------

# One entity tag of an If-Match list (RFC 9110 §8.8.3), up to the comma that ends it: optional
# weakness mark, quoted opaque tag (which may itself hold commas).
ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*(?:,|\Z)')


def etag(version: int) -> str:
    """A slider's entity tag: its version, as a strong tag (`"7"`)."""
    return f'"{version}"'


def parse_if_match(header: str | None) -> frozenset[int] | None:
    """The slider versions an `If-Match` header accepts; None when any version will do.

    No header or `*` (the slider exists, or the request fails anyway) is None. Otherwise the
    strong tags that are versions; weak tags never match (If-Match compares strongly) and
    other tags match no version. Raises Refusal("bad_request") for a header that is not
    a list of entity tags.
    """
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    position = 0
    while position < len(header):
        if header[position] in " \t,":  # RFC 9110 §5.6.1: empty list elements are allowed
            position += 1
            continue
        tag = ENTITY_TAG.match(header, position)
        if tag is None:
            raise services.Refusal(
                "bad_request", 'If-Match must be * or entity tags such as "7" (the ETag).'
            )
        weak, opaque = tag.groups()
        # Strong comparison is character by character: "07" is not version 7.
        if not weak and re.fullmatch(r"0|[1-9][0-9]{0,19}", opaque):
            versions.add(int(opaque))
        position = tag.end()
    return frozenset(versions)


def _preset_if_match(header: str | None) -> frozenset[str] | None:
    """The preset tags an `If-Match` header accepts ("*": any), None without the header.

    Weak tags never match. Raises Refusal("bad_request") as `parse_if_match` does.
    """
    if header is None:
        return None
    if header.strip() == "*":
        return frozenset({"*"})
    parse_if_match(header)  # refuses what is not a list of entity tags
    return frozenset(
        opaque for weak, opaque in ENTITY_TAG.findall(header) if not weak and opaque != "*"
    )


_buckets: dict[str, TokenBucket] = {}


def _client_key(request: ApiRequest) -> str:
    user = request.auth
    explicit: str | None = getattr(request, "api_client", None)
    if explicit:
        return explicit
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{addresses.request_ip(request)}"


def _take_token(request: ApiRequest) -> None:
    """The same rate limit as a socket connection, per token, user or address."""
    key = _client_key(request)
    bucket = _buckets.get(key)
    if bucket is None:
        if len(_buckets) > 10_000:
            _buckets.clear()  # forget idle clients rather than grow without bound
        bucket = _buckets[key] = TokenBucket(settings.SLIDER_SET_RATE, settings.SLIDER_SET_BURST)
    if not bucket.take():
        raise services.Refusal("rate_limited", "Too many changes at once; slow down.")


def _viewable_board(request: ApiRequest, slug: str) -> Board:
    """The board in the address, if this user may view it; first checks the address's text.

    Every endpoint with path parameters calls this before anything else, so a segment the
    database cannot take (`%00`) is refused as `invalid_value` here, not by the driver.
    """
    match = request.resolver_match
    for name, text in (match.kwargs if match is not None else {}).items():
        if isinstance(text, str):
            services.check_text(text, field=f"'{name}' in the address")
    board = selectors.get_board(slug)
    if board is None:
        raise services.Refusal("unknown_board", f"There is no board '{slug[:100]}'.")
    if not board.user_can_view(request.auth):
        raise services.Refusal("forbidden", "This board is for signed-in users.")
    return board


def _actor(request: ApiRequest) -> services.Actor:
    user = request.auth
    return services.Actor(
        user=user if user is not None and user.is_authenticated else None,
        source=AuditEntry.Source.API,
        address=addresses.request_ip(request),
        client=_client_key(request)[:64],
    )


# --- Addresses and methods with no endpoint -----------------------------------------------------
# Everything under /api/ answers in the shape above; Django and django-ninja would answer these
# with an HTML page or plain text.

View = Callable[..., HttpResponseBase]


def urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """The API's URL configuration, for `path("api/", ...)` in sliderproject/urls.py.

    django-ninja's own (`api.urls`), each view wrapped so that a method the address does not
    take is answered 405 `method_not_allowed` (with `Allow`) and an `Http404` (ninja's view for
    `/api/` itself raises one) is answered 404 `not_found`.
    """
    patterns, app_name, namespace = api.urls
    return [_in_json(p) for p in patterns], app_name, namespace


@csrf_exempt
def not_found(request: HttpRequest) -> HttpResponse:
    """Any other address under /api/: 404 `not_found`, saying what was probably meant.

    Routed after the endpoints (sliderproject/urls.py). An address that is an endpoint but for
    a trailing slash (`/api/boards/`) is told so; `/api/` and `/api` point at the docs. CSRF
    exempt, as the endpoints are: a POST to a wrong address is a 404, not a CSRF failure.
    """
    path = request.path_info
    if path.rstrip("/") == "/api":
        message = "This is the Slider Sync API; its endpoints are listed at /api/docs."
    elif path.endswith("/") and _is_endpoint(path.rstrip("/")):
        message = f"API addresses end without a slash: {path.rstrip('/')[:200]}"
    else:
        message = "No endpoint has this address; the API's endpoints are listed at /api/docs."
    return error_response(request, "not_found", message)


def _is_endpoint(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.namespace == api.urls_namespace and match.url_name != "api-root"


def _in_json(pattern: URLPattern | URLResolver) -> URLPattern | URLResolver:
    if not isinstance(pattern, URLPattern):
        return pattern
    return URLPattern(
        pattern.pattern, _json_errors(pattern.callback), pattern.default_args, pattern.name
    )


def _json_errors(view: View) -> View:
    # django-ninja's views are synchronous for synchronous endpoints, which ours all are.
    @functools.wraps(view)  # keeps csrf_exempt
    def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return not_found(request)
        if response.status_code != 405 or not response.has_header("Allow"):
            return response
        allowed = ", ".join(sorted(m.strip() for m in response["Allow"].split(",")))
        refusal = error_response(
            request,
            "method_not_allowed",
            f"{request.method} is not allowed here; this address takes {allowed}.",
        )
        refusal["Allow"] = allowed
        return refusal

    return answer
