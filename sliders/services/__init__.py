"""The services: every change to the data goes through here, validated, audited and announced.

**These are the only writers of a slider's value.** One statement writes it,
`values.write` (an UPDATE that also bumps `version` by exactly one and records the audit entry,
under the row lock), and three services call it:

- `set_slider_value`: one slider, for every client that moves one (socket, HTTP API, command);
- `set_slider_values`: several sliders of a board in one transaction (`recall_preset`, a fade's
  frames);
- `save_slider`: the admin, which may change a slider's range or step in the same statement; a
  new slider is created with its first (normalised) value by `Slider.save()` here.

Besides, `sliders.keys` lifts `version` (never the value) when a slider takes a key. Every
write validates, clamps, snaps to the step grid, and is announced only after the transaction
commits (`sliders.notices`). A refusal is a `Refusal` whose `code` is the wire protocol's.

Split by sub-domain: `values` (normalising and setting values), `structure` (boards, sliders,
share links), `presets`, `access` (who acts, and whether they may), `audit` (the trail, its
merging and pruning), `tokens` (API tokens), `bridges` (bridge targets, their state, webhooks'
delivery logs), `text` (the unstorable-text rule), `statements` (a set's three statements in
SQL, written once), `errors`. Callers use `from sliders import services` and the names below.
"""

from __future__ import annotations

from sliders.services.access import Actor, check_can_edit, current_user
from sliders.services.audit import prune as prune_audit_trail
from sliders.services.bridges import (
    delete_mqtt_broker,
    delete_osc_target,
    delete_webhook,
    record_target_state,
    record_webhook_deliveries,
    save_mqtt_broker,
    save_osc_target,
    save_webhook,
)
from sliders.services.errors import Refusal
from sliders.services.presets import (
    Recall,
    check_admin_preset,
    check_preset_values,
    delete_preset,
    find_preset,
    name_key,
    plan_recall,
    preset_tag,
    recall_preset,
    save_preset,
    save_preset_from_admin,
)
from sliders.services.structure import (
    check_range,
    delete_board,
    delete_share_link,
    delete_slider,
    highest_value,
    next_position,
    save_board,
    save_share_link,
    save_slider,
)
from sliders.services.text import check_text, unstorable_character, validate_storable_text
from sliders.services.tokens import (
    api_client_of,
    find_api_token,
    issue_api_token,
    looks_like_api_token,
    record_api_token_use,
    token_use_is_due,
    user_for_api_token,
)
from sliders.services.values import (
    SLUG_PATTERN,
    STRUCTURE_FIELDS,
    SliderChange,
    check_base_version,
    is_finite_number,
    lateness,
    normalize_value,
    set_slider_value,
    set_slider_values,
)

__all__ = [
    "SLUG_PATTERN",
    "STRUCTURE_FIELDS",
    "Actor",
    "Recall",
    "Refusal",
    "SliderChange",
    "api_client_of",
    "check_admin_preset",
    "check_base_version",
    "check_can_edit",
    "check_preset_values",
    "check_range",
    "check_text",
    "current_user",
    "delete_board",
    "delete_mqtt_broker",
    "delete_osc_target",
    "delete_preset",
    "delete_share_link",
    "delete_slider",
    "delete_webhook",
    "find_api_token",
    "find_preset",
    "highest_value",
    "is_finite_number",
    "issue_api_token",
    "lateness",
    "looks_like_api_token",
    "name_key",
    "next_position",
    "normalize_value",
    "plan_recall",
    "preset_tag",
    "prune_audit_trail",
    "recall_preset",
    "record_api_token_use",
    "record_target_state",
    "record_webhook_deliveries",
    "save_board",
    "save_mqtt_broker",
    "save_osc_target",
    "save_preset",
    "save_preset_from_admin",
    "save_share_link",
    "save_slider",
    "save_webhook",
    "set_slider_value",
    "set_slider_values",
    "token_use_is_due",
    "unstorable_character",
    "user_for_api_token",
    "validate_storable_text",
]
