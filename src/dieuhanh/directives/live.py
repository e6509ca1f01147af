"""Live events of directives, published by each verb inside its transaction (`dieuhanh.live.
publish_on_commit`): they leave when it commits, never if it rolls back, and reach the screens of every
web process, whichever process (web, `worker followup`) made the change.

- `delivery`, to a unit's inbox (`/api/v1/inbox/stream`, dieuhanh.streams), for each change of one of
  its deliveries, and of a delivery escalated from a unit below:

      event: delivery
      data: {"id": 12, "directive": 3, "state": "acknowledged", "event": "acknowledge", "cancelled": false}

- `directive`, one per change, to the rooms of the deliveries' units and of the units above them.

In-app notifications (new directive, reminder, escalation) go to the same inboxes from the follow-up's
in-app channel (`channels.InAppChannel`), as event `notification`.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from dieuhanh.directives.models import Delivery, Directive
from dieuhanh.live import BUS, area_keys, publish_on_commit


def directive_changed(event: str, directive: Directive, changed: list[Delivery]) -> None:
    """Inside a directive's verb, after its writes: its events, sent when it commits.

    `changed` is the delivery a unit's verb changed, in hand with its unit (read, acknowledge, respond):
    its events are made without a query, which matters when 10,000 communes acknowledge at once. A
    directive's own verbs (issue, update, cancel) change every delivery, and name none."""
    listening = BUS.listening()  # None beyond one process: anyone may listen
    inboxes = None if listening is None else {key for key in listening if isinstance(key, int)}
    if changed:
        if BUS.listening_to_areas():
            keys = set().union(*(area_keys(d.unit.edition_id, d.unit.path) for d in changed))
            publish_on_commit(keys, "directive", _room_data(directive, event, len(changed)))
        cancelled = directive.cancelled_at
        for d in changed:
            row = (d.pk, directive.pk, d.unit_id, d.unit.parent_id, d.state, d.escalated_at, cancelled)
            _publish_delivery(row, event)
        return
    if BUS.listening_to_areas():
        publish_to_rooms(directive, event)
    if inboxes is not None and not inboxes:
        return
    deliveries = Delivery.objects.filter(directive=directive)
    if inboxes is not None:  # issue, update, cancel reach every delivery: only those listened for
        deliveries = deliveries.filter(
            Q(unit_id__in=inboxes) | Q(escalated_at__isnull=False, unit__parent_id__in=inboxes)
        )
    publish_deliveries(deliveries, event)


def publish_to_rooms(directive: Directive, event: str) -> None:
    """One `directive` event to every room above the directive's deliveries' units."""
    places = Delivery.objects.filter(directive=directive).values_list("unit__edition_id", "unit__path")
    keys = set().union(*(area_keys(edition, path) for edition, path in places.distinct()))
    publish_on_commit(keys, "directive", _room_data(directive, event, 0))


def _room_data(directive: Directive, event: str, deliveries: int) -> dict:
    return {"directive": directive.pk, "event": event, "deliveries": deliveries}


def publish_deliveries(deliveries: QuerySet[Delivery], event: str) -> None:
    """One `delivery` event each, to the unit and, once escalated, to its parent."""
    rows = deliveries.values_list(
        "pk", "directive_id", "unit_id", "unit__parent_id", "state", "escalated_at", "directive__cancelled_at"
    )
    for row in rows:
        _publish_delivery(row, event)


def _publish_delivery(row: tuple, event: str) -> None:
    pk, directive_id, unit, parent, state, escalated_at, cancelled_at = row
    units = {unit} | ({parent} if escalated_at and parent else set())
    data = {
        "id": pk,
        "directive": directive_id,
        "state": state,
        "event": event,
        "cancelled": cancelled_at is not None,
    }
    publish_on_commit(units, "delivery", data)
