"""Whether a figure shown to people (a report's number, a room tile) is approved at its unit's level
(issue 19, point 5): reports and the room mark the others "chưa phê duyệt"."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.indicators import analytics
from dieuhanh.indicators.approval.models import Approval, DataSetApproval
from dieuhanh.indicators.approval.services import ApprovalError, approved_units, states
from dieuhanh.indicators.models import DataSet
from dieuhanh.indicators.periods import Period
from dieuhanh.units.models import Unit
from dieuhanh.vnformat import VN_TZ

# A mark inside reports, which are Vietnamese documents whatever their reader's language.
UNAPPROVED = "chưa phê duyệt"


def unapproved(code: str, period: Period, units: list[Unit]) -> set[int]:
    """The units (ids) whose figure `code` (an indicator, a data element) for the period is not approved
    at the unit's own level or above: for every data element it reads that belongs to a data set with
    approval, every period of the set's type inside `period` (up to today). Figures that read no data
    set with approval are never marked."""
    if not units or not DataSetApproval.objects.exists():  # one cheap query while nobody uses approval
        return set()
    try:
        dim = analytics.dimension(code)
    except analytics.AnalyticsError:
        return set()
    element_ids = set()
    for ref, _chain in analytics.needs(dim.tree):
        source = analytics.reference(ref)
        if isinstance(source, analytics.ElementRef):
            element_ids.add(source.element.pk)
    if not element_ids:
        return set()
    settings = list(
        DataSetApproval.objects.filter(data_set__elements__in=element_ids)
        .select_related("data_set")
        .distinct()
    )
    today = timezone.now().astimezone(VN_TZ).date()
    out: set[int] = set()
    for found in settings:
        parts = [p for p in period.split(found.data_set.period_type) if p.start <= today] or [period]
        for part in parts:
            approved = approved_units(found.data_set, part.id, units)
            out |= {u.pk for u in units if u.pk not in approved}
    return out


def entry_note(data_set: DataSet, pid: str, unit: Unit) -> str:
    """What the entry form says about the period's approval at the unit ("" when the set has none)."""
    if not DataSetApproval.objects.filter(data_set=data_set).exists():
        return ""
    codes = unit.path.strip("/").split("/")
    found = (
        Approval.objects.filter(
            data_set=data_set, period=pid, unit__edition_id=unit.edition_id, unit__code__in=codes
        )
        .select_related("unit")
        .order_by("unit__level")
        .first()
    )
    if found is None:
        return str(_("This period's figures are not approved yet."))
    return str(
        _(
            "This period was approved by %(unit)s: its figures are locked. To change them, the unit"
            " that approved (or a level above it) must withdraw the approval, giving the reason."
        )
        % {"unit": found.unit.name}
    )


def entry_acts(user: User, data_set: DataSet, pid: str, unit: Unit) -> list[str]:
    """The approval acts the user may do on the unit's period from its entry form: approve, unapprove."""
    if not DataSetApproval.objects.filter(data_set=data_set).exists():
        return []
    try:
        found = states(user=user, data_set=data_set, period=pid, unit=unit, children=False)
    except ApprovalError:
        return []
    return [a for a in found["units"][0]["youCan"] if a in ("approve", "unapprove")]
