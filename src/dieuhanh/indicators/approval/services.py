"""Approving a data set's figures, per period and unit, up the levels of the unit's map (issue 19).

The chain of a data set on a map is its approving levels from the lowest up: commune → province →
nation on VN-2025, commune → district → province → nation on VN-2021 (DataSetApproval.levels may name
fewer). Per unit and period:

- the unit's leader or operator **approves** its own figures (a unit above the lowest level only once
  every unit of the level below under it is accepted);
- the level above **accepts** the approval (acknowledges it; from then on only it can undo it) and
  later approves its own figures in turn;
- **unapprove** takes an approval back, with a reason: by the unit while not yet accepted, by the level
  above at any time, never once a level higher still has approved.

An admin grant on a unit lets its holder act for any level inside it (DHIS2's "approve at lower
levels"); the acting unit must still lie inside the admin's area, so a commune's admin cannot accept
for its province. One call acts on many units set-wise (a handful of queries whatever their number)
and is all or nothing: a refusal of any unit writes nothing and names every refused unit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from django.db import connections, models, router, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dieuhanh import live
from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.errors import DomainError
from dieuhanh.indicators.approval.models import Approval, ApprovalAudit, DataSetApproval, LockException
from dieuhanh.indicators.models import DataSet
from dieuhanh.indicators.periods import Period, PeriodError, parse
from dieuhanh.units.models import Edition, Unit
from dieuhanh.units.scoping import Area
from dieuhanh.vnformat import VN_TZ

ACTIONS = ("approve", "accept", "unapprove")
ACTOR_ROLES = ("leader", "operator")  # act at their own unit's level
LEVEL_NAMES = {
    "nation": _("the national level"),
    "province": _("the province level"),
    "district": _("the district level"),
    "commune": _("the commune level"),
}
MAX_NAMED = 50  # refused units named in one answer


class ApprovalError(DomainError):
    """A refused approval action; `status` is the HTTP status, `field` the input at fault, `units`
    the refused units with a reason each (a member of the answer when there are any)."""

    def __init__(
        self,
        field: str | None,
        message: str | Promise,
        status: int = 422,
        units: list[dict[str, str]] | None = None,
    ):
        super().__init__(field, message, status)
        self.units = units or []
        if self.units:
            self.extra["units"] = self.units


def vn_today() -> date:
    return timezone.now().astimezone(VN_TZ).date()


# The chain of levels


@dataclass
class Chain:
    """A data set's approving levels on one map, as level numbers from the lowest up."""

    edition: Edition
    levels: list[int]

    def kind(self, level: int) -> str:
        return str(self.edition.levels[level])

    def above(self, unit: Unit) -> int | None:
        """The level number that accepts the unit's approval (None at the top)."""
        higher = [lv for lv in self.levels if lv < unit.level]
        return max(higher) if higher else None

    def below(self, unit: Unit) -> int | None:
        """The level number whose units the unit's approval waits for (None at the bottom)."""
        lower = [lv for lv in self.levels if lv > unit.level]
        return min(lower) if lower else None

    def level_name(self, level: int) -> str:
        kind = self.kind(level)
        if kind in LEVEL_NAMES:
            return str(LEVEL_NAMES[kind])
        return str(_("the %(kind)s level") % {"kind": kind})


def settings_of(data_set: DataSet) -> DataSetApproval | None:
    return DataSetApproval.objects.filter(data_set=data_set).first()


def approving(data_set: DataSet) -> DataSetApproval:
    """The data set's approval settings; ApprovalError (422 on dataSet) when it does not use approval."""
    settings = settings_of(data_set)
    if settings is None:
        raise ApprovalError(
            "dataSet", _("Data set '%(code)s' does not use approval.") % {"code": data_set.code}
        )
    return settings


def chain(settings: DataSetApproval, edition: Edition) -> Chain:
    named = (settings.levels or {}).get(edition.code)
    kinds: list[str] = list(edition.levels)
    if named:
        chosen = [k for k in named if k in kinds]
    elif settings.data_set.unit_kind in kinds:
        chosen = kinds[: kinds.index(settings.data_set.unit_kind) + 1]
    else:
        chosen = kinds
    return Chain(edition, sorted((kinds.index(k) for k in chosen), reverse=True))


def ancestor_code(unit: Unit, level: int) -> str:
    return unit.path.strip("/").split("/")[level]


def configure(
    *, actor: User | None, data_set: DataSet, levels: dict[str, list[str]] | None = None, expiry_days: int = 0
) -> DataSetApproval:
    """Turn approval on for a data set (or change its levels and expiry days)."""
    for code, kinds in (levels or {}).items():
        edition = Edition.objects.filter(code=code).first()
        if edition is None:
            raise ApprovalError("levels", _("No map '%(code)s'.") % {"code": code}, 422)
        wrong = [k for k in kinds if k not in edition.levels]
        if wrong:
            raise ApprovalError(
                "levels",
                _("Map %(code)s has no level %(kinds)s (its levels: %(known)s).")
                % {"code": code, "kinds": ", ".join(wrong), "known": ", ".join(edition.levels)},
                422,
            )
    found, _created = DataSetApproval.objects.update_or_create(
        data_set=data_set, defaults={"levels": levels or {}, "expiry_days": expiry_days}
    )
    audit(actor, "approval.configure", data_set.code, levels=levels or {}, expiry_days=expiry_days)
    return found


# Reading the arguments


def data_set_named(code: str) -> tuple[DataSet, DataSetApproval]:
    data_set = DataSet.objects.filter(code=code).first()
    if data_set is None:
        raise ApprovalError("dataSet", _("No data set '%(code)s'.") % {"code": code}, 404)
    return data_set, approving(data_set)


def period_of(data_set: DataSet, pid: str) -> Period:
    try:
        period = parse(pid)
    except PeriodError as exc:
        raise ApprovalError("period", str(exc), 422) from None
    if period.type != data_set.period_type:
        raise ApprovalError(
            "period",
            _("Data set '%(code)s' reports by %(type)s periods; '%(pid)s' is a %(other)s period.")
            % {"code": data_set.code, "type": data_set.period_type, "pid": pid, "other": period.type},
            422,
        )
    return period


def units_named(refs: list[str], area: Area, edition: str = "VN-2025") -> list[Unit]:
    """The units of the refs (EDITION:CODE or a code of `edition`), each inside `area`; one 404 naming
    every ref that is unknown or outside the area, in the same words (nothing outside is revealed)."""
    if not refs:
        raise ApprovalError("units", _("Name at least one unit to act on."), 422)
    wanted: dict[str, list[str]] = {}
    order: list[tuple[str, str]] = []
    for ref in refs:
        ed, _sep, code = str(ref).strip().rpartition(":")
        wanted.setdefault(ed or edition, []).append(code)
        order.append((ed or edition, code))
    found: dict[tuple[str, str], Unit] = {}
    for ed, codes in wanted.items():
        for unit in Unit.objects.filter(edition_id=ed, code__in=codes):
            if area.contains(unit):
                found[(ed, unit.code)] = unit
    missing = [f"{ed}:{code}" for ed, code in order if (ed, code) not in found]
    if missing:
        raise ApprovalError(
            "units",
            _("No unit %(refs)s.") % {"refs": ", ".join(missing[:MAX_NAMED])},
            404,
            units=[{"unit": ref, "reason": str(_("no such unit"))} for ref in missing[:MAX_NAMED]],
        )
    return list(dict.fromkeys(found[key] for key in order))


# Who may act


@dataclass
class Powers:
    """Where the caller acts: its own units (leader, operator) and its admin area."""

    own: set[tuple[str, str]]
    nation: bool
    admin: Area

    @classmethod
    def of(cls, user: User) -> Powers:
        own = {(g.unit.edition_id, g.unit.path) for g in user.held() if g.role in ACTOR_ROLES}
        nation = any(g.unit.level == 0 for g in user.held() if g.role in ACTOR_ROLES)
        return cls(own, nation, user.area("admin"))

    def acts_for(self, unit: Unit) -> bool:
        if unit.level == 0 and self.nation:
            return True
        return (unit.edition_id, unit.path) in self.own or self.admin.contains(unit)


# Acting


class Approved(NamedTuple):
    approved_at: datetime
    accepted_at: datetime | None
    approved_by: str | None


@dataclass
class Outcome:
    action: str
    data_set: str
    period: str
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "dataSet": self.data_set,
            "period": self.period,
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "units": self.changed,
        }


@dataclass
class _Plan:
    """What one call does to each unit, worked out before anything is written."""

    chains: dict[str, Chain]
    parents: dict[int, Unit | None]  # unit id → the unit that accepts it
    approvals: dict[int, Approved]  # unit id → its approval (units and their parents)
    accepted: set[int] | None = None  # every accepted unit of the set and period, read when needed
    refused: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)

    def refuse(self, status: int, unit: Unit, reason: str | Promise) -> None:
        self.refused.append((status, unit.ref, {"unit": unit.ref, "reason": str(reason)}))


def act(
    *,
    actor: User,
    action: str,
    data_set: DataSet,
    period: str,
    units: list[Unit],
    reason: str = "",
) -> Outcome:
    """Approve, accept or unapprove the data set for the period at each unit; all or nothing."""
    if action not in ACTIONS:
        raise ApprovalError(
            "action", _("The action is approve, accept or unapprove (not '%(a)s').") % {"a": action}, 422
        )
    reason = reason.strip()
    if action == "unapprove" and not reason:
        raise ApprovalError("reason", _("Unapproving needs a reason."), 422)
    settings = approving(data_set)
    pid = period_of(data_set, period).id
    plan = _plan(settings, pid, units)
    powers = Powers.of(actor)
    outcome = Outcome(action, data_set.code, pid)
    todo: list[Unit] = []
    for unit in units:
        refused = len(plan.refused)
        if _check(action, unit, plan, powers, settings, pid):
            todo.append(unit)
        elif len(plan.refused) == refused:
            outcome.unchanged.append(unit.ref)
    if plan.refused:
        plan.refused.sort(key=lambda r: {404: 0, 403: 1, 409: 2}.get(r[0], 3))
        status = plan.refused[0][0]
        named = [r[2] for r in plan.refused[:MAX_NAMED]]
        first = named[0]
        more = len(plan.refused) - 1
        message = f"{first['unit']}: {first['reason']}"
        if more:
            message += " " + _("(and %(n)s other unit(s) refused; no unit was written)") % {"n": more}
        raise ApprovalError("units", message, status, units=named)
    if todo:  # every unit already so: nothing to write, nothing to announce
        _write(actor, action, data_set, pid, todo, plan, reason)
    outcome.changed = [u.ref for u in todo]
    return outcome


def _plan(settings: DataSetApproval, pid: str, units: list[Unit]) -> _Plan:
    editions = {e.code: e for e in Edition.objects.filter(code__in={u.edition_id for u in units})}
    chains = {code: chain(settings, e) for code, e in editions.items()}
    parent_codes: dict[int, tuple[str, str]] = {}
    for unit in units:
        above = chains[unit.edition_id].above(unit)
        if above is not None:
            parent_codes[unit.pk] = (unit.edition_id, ancestor_code(unit, above))
    by_code: dict[tuple[str, str], Unit] = {}
    for ed in {e for e, _c in parent_codes.values()}:
        codes = {c for e, c in parent_codes.values() if e == ed}
        for parent in Unit.objects.filter(edition_id=ed, code__in=codes):
            by_code[(ed, parent.code)] = parent
    parents = {u.pk: by_code.get(parent_codes[u.pk]) if u.pk in parent_codes else None for u in units}
    ids = {u.pk for u in units} | {p.pk for p in parents.values() if p is not None}
    # Plain rows, not models: building thousands of instances cost more than the query.
    approvals = {
        unit_id: Approved(approved_at, accepted_at, by)
        for unit_id, approved_at, accepted_at, by in Approval.objects.filter(
            data_set_id=settings.data_set_id, period=pid, unit_id__in=ids
        ).values_list("unit_id", "approved_at", "accepted_at", "approved_by__username")
    }
    return _Plan(chains, parents, approvals)


def _check(
    action: str, unit: Unit, plan: _Plan, powers: Powers, settings: DataSetApproval, pid: str
) -> bool | None:
    """True: act on the unit; None: nothing to do; a refusal is added to the plan (and returns None)."""
    chain_ = plan.chains[unit.edition_id]
    if unit.level not in chain_.levels:
        plan.refuse(
            422,
            unit,
            _("%(kind)s is not one of this data set's approval levels.") % {"kind": unit.get_kind_display()},
        )
        return None
    parent = plan.parents.get(unit.pk)
    mine = plan.approvals.get(unit.pk)
    above = plan.approvals.get(parent.pk) if parent else None
    if action == "approve":
        if not powers.acts_for(unit):
            plan.refuse(403, unit, _("only this unit's own leaders or officials approve its figures"))
            return None
        if mine is not None:
            return None
        if above is not None:
            above_name = parent.name  # type: ignore[union-attr]
            plan.refuse(
                409, unit, _("the level above (%(name)s) has approved this period") % {"name": above_name}
            )
            return None
        if plan.accepted is None:
            plan.accepted = accepted_ids(settings, pid)
        count, names = _not_accepted_below(unit, chain_, settings, pid, plan.accepted)
        if count:
            plan.refuse(
                409,
                unit,
                _("%(n)s unit(s) below are not accepted yet (%(names)s%(more)s)")
                % {"n": count, "names": ", ".join(names), "more": ", …" if count > len(names) else ""},
            )
            return None
        return True
    if action == "accept":
        if parent is None:
            plan.refuse(422, unit, _("this is the top level: there is no level above to accept it"))
            return None
        if not powers.acts_for(parent):
            plan.refuse(
                403,
                unit,
                _("accepting belongs to the %(level)s (%(name)s)")
                % {"level": chain_.level_name(parent.level), "name": parent.name},
            )
            return None
        if mine is None:
            plan.refuse(409, unit, _("the unit has not approved this period"))
            return None
        if above is not None:
            plan.refuse(
                409, unit, _("the level above (%(name)s) has approved this period") % {"name": parent.name}
            )
            return None
        return None if mine.accepted_at else True
    # unapprove
    own, over = powers.acts_for(unit), parent is not None and powers.acts_for(parent)
    if not own and not over:
        plan.refuse(403, unit, _("only this unit or the level directly above unapproves"))
        return None
    if mine is None:
        return None
    if above is not None:
        plan.refuse(
            409,
            unit,
            _("the level above (%(name)s) has approved this period; it must unapprove first")
            % {"name": parent.name},  # type: ignore[union-attr]
        )
        return None
    if mine.accepted_at and not over:
        plan.refuse(
            409,
            unit,
            _("the level above has accepted; ask it to unapprove (send back) if the figures need correcting"),
        )
        return None
    return True


def _not_accepted_below(
    unit: Unit, chain_: Chain, settings: DataSetApproval, pid: str, accepted: set[int] | None = None
) -> tuple[int, list[str]]:
    """How many units of the level below (under the unit) are not accepted yet, and the first names.

    The difference is made here, from two indexed reads, rather than in SQL: with a join or NOT IN,
    PostgreSQL planned nested loops over a table just filled (no statistics yet), seconds per province."""
    below = chain_.below(unit)
    if below is None:
        return 0, []
    if accepted is None:
        accepted = accepted_ids(settings, pid)
    units = Unit.objects.filter(edition_id=unit.edition_id, level=below, path__under=unit.path)
    waiting = [name for pk, name in units.order_by("code").values_list("pk", "name") if pk not in accepted]
    return len(waiting), waiting[:5]


def accepted_ids(settings: DataSetApproval, pid: str) -> set[int]:
    return set(
        Approval.objects.filter(
            data_set_id=settings.data_set_id, period=pid, accepted_at__isnull=False
        ).values_list("unit_id", flat=True)
    )


@transaction.atomic
def _write(
    actor: User, action: str, data_set: DataSet, pid: str, units: list[Unit], plan: _Plan, reason: str
) -> None:
    now = timezone.now()
    ids = [u.pk for u in units]
    rows = Approval.objects.filter(data_set=data_set, period=pid)
    if action == "approve":
        _insert(
            Approval,
            ["data_set_id", "period", "unit_id", "approved_by_id", "approved_at"],
            [(data_set.pk, pid, u.pk, actor.pk, now) for u in units],
        )
    elif action == "accept":
        for chunk in _chunks(ids):
            rows.filter(unit_id__in=chunk).update(accepted_by=actor, accepted_at=now)
    else:  # no model refers to an approval: a plain DELETE (Django's would read every row first)
        for chunk in _chunks(ids):
            rows.filter(unit_id__in=chunk)._raw_delete(rows.db)
    _insert(
        ApprovalAudit,
        ["data_set_id", "period", "unit_id", "action", "reason", "actor_id", "actor_name", "at"],
        [(data_set.pk, pid, u.pk, action, reason, actor.pk, actor.username, now) for u in units],
    )
    audit(
        actor,
        f"approval.{action}",
        f"{data_set.code} {pid}",
        rows=len(units),
        units=[u.ref for u in units[:MAX_NAMED]],
        reason=reason,
    )
    _announce(action, data_set, pid, units)


def _announce(action: str, data_set: DataSet, pid: str, units: list[Unit]) -> None:
    """Tell the rooms that show these units (their parents' and above; never a neighbour's), when the
    verb commits: event `approval`, so that the map's approval layer and the tiles can be read again."""
    keys: set = set()
    for unit in units:
        above = unit.path if unit.level == 0 else unit.path[: unit.path.rstrip("/").rfind("/") + 1]
        keys |= live.area_keys(unit.edition_id, above)
    first = units[0]
    data = {
        "action": action,
        "dataSet": data_set.code,
        "period": pid,
        "count": len(units),
        "title": f"{ACTION_WORDS[action]}: {data_set.name}, {parse(pid).label()}",
        "unit": first.ref if len(units) == 1 else None,
        "unit_name": first.name if len(units) == 1 else f"{len(units)} đơn vị",
    }
    live.publish_on_commit(keys, "approval", data)


ACTION_WORDS = {"approve": "Phê duyệt", "accept": "Chấp nhận phê duyệt", "unapprove": "Hủy phê duyệt"}


def _insert(model: type[models.Model], columns: list[str], rows: list[tuple]) -> None:
    """INSERT the rows with one executemany: bulk_create builds a model per row, which cost most of
    approving every commune at once. Datetimes are adapted as the backend stores them."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    rows = [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows]
    names, marks = ", ".join(quote(c) for c in columns), ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - our table and column names
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _chunks(ids: list[int], size: int = 900) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


# Reading the state


def states(
    *, user: User, data_set: DataSet, period: str, unit: Unit, children: bool = True
) -> dict[str, Any]:
    """The unit's state and, with `children`, that of each unit of the chain's level below it inside
    the caller's area: approved (by whom, when), accepted, locked from above, and who acts next."""
    settings = approving(data_set)
    pid = period_of(data_set, period).id
    chain_ = chain(settings, unit.edition)
    shown = [unit]
    below = chain_.below(unit) if unit.level in chain_.levels else None
    if children and below is not None:
        shown += list(
            Unit.objects.filter(edition_id=unit.edition_id, level=below, path__under=unit.path)
            .within(user.area())
            .order_by("code")
        )
    plan = _plan(settings, pid, shown)
    # Approvals of the unit's ancestors lock it and everything shown.
    codes = unit.path.strip("/").split("/")[:-1]
    above = list(
        Approval.objects.filter(
            data_set=data_set, period=pid, unit__edition_id=unit.edition_id, unit__code__in=codes
        ).select_related("unit")
    )
    locked_by = min(above, key=lambda a: -a.unit.level).unit if above else None
    waiting = _waiting_counts(unit, shown, chain_, settings, pid)
    powers = Powers.of(user)
    rows = [_state(u, plan, chain_, powers, locked_by, waiting.get(u.pk, 0)) for u in shown]
    approved = sum(r["state"] in ("approved", "accepted") for r in rows[1:])
    return {
        "dataSet": data_set.code,
        "period": pid,
        "periodLabel": parse(pid).label(),
        "unit": unit.ref,
        "levels": [chain_.kind(lv) for lv in chain_.levels],
        "expiryDays": settings.expiry_days,
        "summary": {"children": len(rows) - 1, "approved": approved},
        "units": rows,
    }


def _waiting_counts(
    unit: Unit, shown: list[Unit], chain_: Chain, settings: DataSetApproval, pid: str
) -> dict[int, int]:
    """Per shown unit above the lowest level: how many of its units below are not accepted yet."""
    out: dict[int, int] = {}
    accepted: set[int] | None = None
    for u in shown:
        if u.level in chain_.levels and chain_.below(u) is not None and u.level <= unit.level + 1:
            accepted = accepted_ids(settings, pid) if accepted is None else accepted
            out[u.pk] = _not_accepted_below(u, chain_, settings, pid, accepted)[0]
    return out


def _state(
    unit: Unit, plan: _Plan, chain_: Chain, powers: Powers, locked_by: Unit | None, waiting: int
) -> dict[str, Any]:
    mine = plan.approvals.get(unit.pk)
    parent = plan.parents.get(unit.pk)
    above = plan.approvals.get(parent.pk) if parent else None
    if locked_by is not None or above is not None:
        state = "approved_above"
    elif mine is None:
        state = "open"
    else:
        state = "accepted" if mine.accepted_at else "approved"
    level_name = chain_.level_name(unit.level) if unit.level in chain_.levels else ""
    nxt: dict[str, Any] | None
    if state == "open":
        nxt = {"action": "approve", "by": unit.ref, "byName": unit.name, "level": level_name}
        if waiting:
            nxt["waitingFor"] = waiting
    elif state in ("approved", "accepted") and parent is not None:  # the level above accepts, then approves
        nxt = {
            "action": "accept" if state == "approved" else "approve",
            "by": parent.ref,
            "byName": parent.name,
            "level": chain_.level_name(parent.level),
        }
    else:
        nxt = None
    can = []
    if state == "open" and powers.acts_for(unit) and not waiting:
        can.append("approve")
    if state == "approved" and parent is not None and powers.acts_for(parent):
        can.append("accept")
    if state in ("approved", "accepted") and (
        (parent is not None and powers.acts_for(parent)) or (state == "approved" and powers.acts_for(unit))
    ):
        can.append("unapprove")
    return {
        "unit": unit.ref,
        "name": unit.name,
        "level": level_name,
        "lat": unit.lat,
        "lon": unit.lon,
        "state": state,
        "label": str(STATE_LABELS[state]),
        "approvedBy": mine.approved_by if mine else None,
        "approvedAt": mine.approved_at.isoformat() if mine else None,
        "acceptedAt": mine.accepted_at.isoformat() if mine and mine.accepted_at else None,
        "next": nxt,
        "youCan": can,
    }


STATE_LABELS = {
    "open": _("Not approved"),
    "approved": _("Approved, waiting for the level above to accept"),
    "accepted": _("Accepted by the level above"),
    "approved_above": _("Approved by the level above"),
}


def approved_units(data_set: DataSet, period: str, units: Iterable[Unit]) -> set[int]:
    """The units among these whose figures of the set for the period are approved at their own level
    or above (an approval of the unit or of an ancestor)."""
    units = list(units)
    if not units:
        return set()
    keys: set[tuple[str, str]] = set()
    for u in units:
        parts = u.path.strip("/").split("/")
        keys.update((u.edition_id, code) for code in parts)
    q = Q()
    for ed in {e for e, _c in keys}:
        q |= Q(unit__edition_id=ed, unit__code__in=[c for e, c in keys if e == ed])
    found = set(
        Approval.objects.filter(q, data_set=data_set, period=period).values_list(
            "unit__edition_id", "unit__code"
        )
    )
    return {
        u.pk for u in units if any((u.edition_id, code) in found for code in u.path.strip("/").split("/"))
    }


# Lock exceptions


def request_exception(
    *, actor: User, data_set: DataSet, period: str, unit: Unit, reason: str
) -> LockException:
    reason = reason.strip()
    if not reason:
        raise ApprovalError("reason", _("A lock exception request needs a reason."), 422)
    approving(data_set)  # a lock exception only where approval is on
    pid = period_of(data_set, period).id
    if not Powers.of(actor).acts_for(unit) and not actor.area("operator").contains(unit):
        raise ApprovalError("unit", _("Only the unit itself requests a lock exception for its figures."), 403)
    with transaction.atomic():
        found = LockException.objects.create(
            data_set=data_set, period=pid, unit=unit, reason=reason, requested_by=actor
        )
        audit(actor, "approval.exception.request", f"{data_set.code} {pid} {unit.ref}", reason=reason)
    return found


def deciding_unit(exception: LockException) -> Unit | None:
    """The unit of the chain's level above the requesting unit: it grants or refuses."""
    settings = settings_of(exception.data_set)
    unit = exception.unit
    if settings is None:
        return unit.parent
    above = chain(settings, unit.edition).above(unit)
    if above is None:
        return None
    return Unit.objects.filter(edition_id=unit.edition_id, code=ancestor_code(unit, above)).first()


def decide_exception(
    *, actor: User, exception: LockException, grant: bool, ends_on: date | None = None, note: str = ""
) -> LockException:
    """The level above grants (until `ends_on`) or refuses a request."""
    unit = exception.unit
    parent = deciding_unit(exception)
    if parent is None or not Powers.of(actor).acts_for(parent):
        raise ApprovalError(
            "exception", _("Only the level directly above the unit decides a lock exception."), 403
        )
    if exception.state != LockException.State.REQUESTED:
        raise ApprovalError("exception", _("This request has already been decided."), 409)
    if grant:
        if ends_on is None:
            raise ApprovalError("endsOn", _("Granting an exception needs an end date."), 422)
        if ends_on < vn_today():
            raise ApprovalError("endsOn", _("The end date has passed."), 422)
    with transaction.atomic():
        exception.state = LockException.State.GRANTED if grant else LockException.State.REFUSED
        exception.decided_by, exception.decided_at = actor, timezone.now()
        exception.ends_on = ends_on if grant else None
        exception.decision_note = note.strip()
        exception.save()
        audit(
            actor,
            f"approval.exception.{'grant' if grant else 'refuse'}",
            f"{exception.data_set_id} {exception.period} {unit.ref}",
            ends_on=ends_on.isoformat() if ends_on else None,
            note=note,
        )
    return exception


# Analytics: only approved data (DHIS2's approvalLevel)

KIND_RANK = {"nation": 0, "province": 1, "district": 2, "commune": 3}


def approval_kind(level: str, edition: Edition) -> str:
    """approvalLevel as asked: a kind (commune, district, province, nation) or a level number of the map."""
    level = level.strip().lower()
    if level.isdigit() and int(level) < len(edition.levels):
        return str(edition.levels[int(level)])
    if level in KIND_RANK:
        return level
    raise ApprovalError(
        "approvalLevel",
        _(
            "approvalLevel is a level (commune, district, province, nation) "
            "or a level number 0–%(n)s of %(ed)s."
        )
        % {"n": len(edition.levels) - 1, "ed": edition.code},
        422,
    )


def approved_filter(element_id: int, periods: Iterable[str], kind: str) -> Any:
    """For a data element, a test (edition, unit path, period) → whether its value there is approved at
    `kind` or above; None when the element belongs to no data set with approval (its data is counted)."""
    set_ids = list(
        DataSetApproval.objects.filter(data_set__elements=element_id).values_list("data_set_id", flat=True)
    )
    if not set_ids:
        return None
    rank = KIND_RANK.get(kind, 99)
    approved = {
        (pid, edition, path)
        for pid, edition, path, unit_kind in Approval.objects.filter(
            data_set_id__in=set_ids, period__in=list(periods)
        ).values_list("period", "unit__edition_id", "unit__path", "unit__kind")
        if KIND_RANK.get(unit_kind, 99) <= rank
    }

    def ok(edition: str, path: str, pid: str) -> bool:
        if not approved:
            return False
        parts = path.strip("/").split("/")
        return any(
            (pid, edition, "/" + "/".join(parts[:i]) + "/") in approved for i in range(1, len(parts) + 1)
        )

    return ok
