"""Feedback's verbs: submit (a citizen, no login), accept, answer, forward (a unit's officials).

Every write is one function here, atomic and audited (DESIGN §3). Errors name the field and say why
in Vietnamese: citizens read them as they are.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import math
import re
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import Count, Exists, Max, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest
from django.db.models.sql import UpdateQuery
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import AuditEntry, User
from dieuhanh.accounts.services import audit
from dieuhanh.directives.assignments import TaskInput, create_task
from dieuhanh.directives.channels import ChannelError, send_sms
from dieuhanh.directives.models import Directive, DirectiveKind, Priority, Task
from dieuhanh.directives.services import DirectiveInput, Targets, issue_directive
from dieuhanh.errors import DomainError
from dieuhanh.feedback.models import (
    Category,
    Confirmation,
    Event,
    EventKind,
    Feedback,
    FeedbackQuerySet,
    Handler,
    Photo,
    PostPhoto,
    Status,
    Throttle,
)
from dieuhanh.feedback.photos import UnreadablePhoto, strip_metadata
from dieuhanh.feedback.rows import insert_together, run_together
from dieuhanh.files import content_type
from dieuhanh.indicators import versions
from dieuhanh.live import area_keys, publish_on_commit
from dieuhanh.units.models import Succession, Unit
from dieuhanh.units.scoping import Area
from dieuhanh.units.services import unit_in_area
from dieuhanh.units.text import fold
from dieuhanh.warehouse import vault
from dieuhanh.warehouse.kinds import unfit_character
from dieuhanh.warehouse.models import IncidentReport
from dieuhanh.warehouse.persons import PersonIdError, normalise, short

HANDLER_ROLES = ("leader", "analyst", "operator", "admin")  # who may see and act on a unit's queue
# Not answered yet: received, taken, or taken with progress posted (with a photo: not overdue).
OPEN = (Status.RECEIVED, Status.ACCEPTED, Status.PROGRESS)
EDITION = "VN-2025"
MAX_TEXT = 5000
MAX_PHOTOS = 3
MAX_PHOTO_BYTES = 5 * 1024 * 1024
# Photos are recognised by their first bytes, never by their name or declared type.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})
# Per sender, in a fixed window opened by their first report: a household or a café's Wi-Fi may
# share one address, a person rarely has more than a few things to report in a day.
LIMITS = {Throttle.Scope.CLIENT: (10, timedelta(hours=1)), Throttle.Scope.PHONE: (5, timedelta(days=1))}
# Repeated senders confirm a phone number by a code sent to it by SMS (no CAPTCHA service): from the
# client's 4th report in its window, or the phone's 3rd; a confirmed phone sends without a code for a day.
CONFIRM_AFTER = {Throttle.Scope.CLIENT: 3, Throttle.Scope.PHONE: 2}
CONFIRM_VALID = timedelta(minutes=10)
CONFIRM_RESEND = timedelta(seconds=60)
CONFIRMED_FOR = timedelta(days=1)
CONFIRM_ATTEMPTS = 5
FULL_CLIENT = _(
    "%(n)d reports sent from this device address in %(hours)d hours, the most allowed is %(limit)d;"
    " please send again in %(minutes)d minutes"
)
FULL_PHONE = _(
    "%(n)d reports sent from this phone number in %(hours)d hours, the most allowed is %(limit)d;"
    " please send again in %(minutes)d minutes"
)
# Also the refusal of a photo's declared size, before it is read (read_uploads).
TOO_LARGE = _("the photo is too large: at most %(mb)d MB")
# Reports of one category at the same place: pins within this many metres, or the same address.
SAME_PLACE_M = 150.0
# Pins farther than this from every commune centre are not in Vietnam (or far out at sea).
MAX_PIN_KM = 40.0
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud over the phone
_LONG_NUMBER = re.compile(r"(?<!\d)(?:\+?\d[\d .-]{6,}\d)(?!\d)")


class FeedbackError(DomainError):
    """A request that cannot be carried out: the field to blame (if one is), why, and the status."""


NOT_HERE = _("no report with this code in your area")
NOT_HERE_CODE = _("no report with code '%(code)s' in your area")
TOO_LONG = _("%(n)d characters long; at most %(max)d")


def _fit(field: str, value: str, *, prose: bool = False) -> str:
    bad = unfit_character(value, prose=prose)
    if bad is not None:
        raise FeedbackError(field, _("holds a control character (U+%(code)04X)") % {"code": ord(bad)})
    return value


def _found(value: str) -> bool:
    """Whether a code or reference could name anything at all (a control character names nothing)."""
    return unfit_character(value) is None


# Categories


# The default categories are added by migration 0002 (the admin site changes them).


def active_categories() -> list[Category]:
    return list(Category.objects.filter(active=True))


# Routing: a place → a 2025 commune


@dataclass(frozen=True)
class Place:
    lat: float | None = None
    lon: float | None = None
    address: str = ""


@dataclass(frozen=True)
class Kept:
    """What the intake reads for every report and what changes only with a units load or an edit of
    the categories, kept per process under their data versions (indicators.versions): the active
    categories by code, the 2025 communes by id with their provinces, by name and as successors of
    the pre-2025 ones. Shared between threads: read,
    never changed."""

    categories: dict[str, Category]
    communes: dict[int, Unit]
    # An address's commune (route_address) without a query: a 2025 commune by (province code, folded
    # name), and the 2025 commune that took the largest share of a pre-2025 one, by its code. Their
    # queries cost little to run but ~10 ms to plan (the successor's six joins, at load 5): an
    # address was the slowest report to route.
    by_name: dict[tuple[str, str], Unit]
    successors: dict[str, Unit]
    versions: tuple[int, ...]  # of KEPT_SOURCES, in name order, under which all this was read


KEPT_SOURCES = frozenset({"feedback", "units"})


_kept_lock = threading.Lock()
_kept: dict[str, tuple[int, Any]] = {}  # "feedback" / "units" → (its version, what was read under it)


def kept_now() -> Kept | None:
    """Kept, current as of one read of the two versions; None inside the code's own transaction or
    where a version is missing (then the intake reads the rows themselves)."""
    alias = router.db_for_read(Unit)
    if versions.in_transaction(alias):
        return None
    found = versions.current(KEPT_SOURCES, alias)
    if found is None:
        return None
    categories, units = found  # in the sources' name order
    with _kept_lock:
        if _kept.get("feedback", (None,))[0] != categories:
            _kept["feedback"] = (categories, {c.code: c for c in Category.objects.filter(active=True)})
        if _kept.get("units", (None,))[0] != units:
            rows = Unit.objects.filter(edition_id=EDITION, kind="commune").select_related("parent")
            communes = {u.pk: u for u in rows.order_by("pk")}
            by_name: dict[tuple[str, str], Unit] = {}
            for u in communes.values():  # the first by id, as route_address's query took it
                by_name.setdefault((u.parent.code if u.parent else "", u.search_name), u)
            successors: dict[str, Unit] = {}
            for code, new_id in _successions().values_list("old__code", "new_id"):
                if new_id in communes:
                    successors.setdefault(code, communes[new_id])
            _kept["units"] = (units, (communes, by_name, successors))
        return _kept_as_of()


def kept_last() -> Kept | None:
    """Kept as this process last read it, without asking the versions: the intake asks them inside its
    transaction, in the round trip of its other reads, and reads again if they moved (_file, submit).
    None before a first read and inside the code's own transaction (as kept_now)."""
    if versions.in_transaction(router.db_for_read(Unit)):
        return None
    with _kept_lock:
        if "feedback" not in _kept or "units" not in _kept:
            return None
        return _kept_as_of()


def _kept_as_of() -> Kept:
    """What _kept holds, as Kept (under _kept_lock)."""
    (categories, by_code), (units, (communes, by_name, successors)) = _kept["feedback"], _kept["units"]
    return Kept(by_code, communes, by_name, successors, versions=(categories, units))


def forget_kept() -> None:
    """Drop what kept_now read (tests: a rolled-back test's data versions come again with other rows)."""
    with _kept_lock:
        _kept.clear()


_centres: list[tuple[float, float, int]] = []  # sorted by latitude
_latitudes: list[float] = []
KM_PER_DEGREE_LAT = 111.0


def _commune_centres() -> list[tuple[float, float, int]]:
    # Kept per process: 3,321 points, read once; a reload of the units is noticed on use (route_pin).
    if not _centres:
        rows = Unit.objects.filter(edition_id=EDITION, kind="commune", lat__isnull=False, lon__isnull=False)
        _centres.extend(sorted(rows.values_list("lat", "lon", "id")))
        _latitudes[:] = [c[0] for c in _centres]
    return _centres


def _near(lat: float) -> list[tuple[float, float, int]]:
    """The centres in the band of latitude where one within MAX_PIN_KM of the pin can be (a band of
    Vietnam, long from north to south: a twentieth of its communes, not all 3,321)."""
    band = MAX_PIN_KM / KM_PER_DEGREE_LAT * 1.01
    return _centres[bisect.bisect_left(_latitudes, lat - band) : bisect.bisect_right(_latitudes, lat + band)]


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # Equirectangular: exact enough over tens of kilometres, and cheap over 3,321 centres.
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6371.0 * math.hypot(x, math.radians(lat2 - lat1))


def _nearest(lat: float, lon: float, centres: list[tuple[float, float, int]]) -> tuple[float, int]:
    """(km, id) of the centre nearest the pin, as _km ranks them: a flat distance with the pin's own
    cosine ranks all of them (no function call, no cosine each), then _km decides between the few
    within 2% of the best — their rankings differ by under 0.3% over a band of 40 km."""
    if not centres:
        return math.inf, 0
    scale = math.cos(math.radians(lat))
    flat = [((c_lon - lon) * scale) ** 2 + (c_lat - lat) ** 2 for c_lat, c_lon, _pk in centres]
    best = min(flat)
    close = [c for c, d in zip(centres, flat, strict=True) if d <= best * 1.02 + 1e-12]
    return min((_km(lat, lon, c_lat, c_lon), pk) for c_lat, c_lon, pk in close)


def route_pin(lat: float, lon: float, kept: Kept | None = None) -> Unit:
    """The 2025 commune whose centre is nearest the pin (no commune shapes are packaged)."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FeedbackError("lat", _("not a place on Earth (latitude -90 to 90, longitude -180 to 180)"))
    for _attempt in range(2):
        if not _commune_centres():
            break
        dist, unit_id = _nearest(lat, lon, _near(lat))
        if dist > MAX_PIN_KM:
            raise FeedbackError("lat", _("the place chosen is outside Vietnam"))
        if kept is not None:
            unit = kept.communes.get(unit_id)
        else:
            unit = Unit.objects.select_related("parent").filter(pk=unit_id).first()
        if unit is not None:
            return unit
        _centres.clear()  # the units were reloaded under new ids: read them again
        _latitudes.clear()
    raise FeedbackError("lat", _("no administrative units are loaded to place a pin in"), status=503)


def route_address(address: str, kept: Kept | None = None) -> Unit:
    """The 2025 commune an address names, in the new form or the pre-2025 one (then carried over)."""
    from vietnamadminunits import parse_address  # its import loads the whole parser: only when needed

    old = parse_address(address, mode="LEGACY", level=3)
    # An old address names its district; one that parses in full is old, whatever else matches.
    old_code = old.ward_code or (old.district_code if old.district_code and not old.ward_key else None)
    if old_code and old.district_code:
        found = kept.successors.get(str(old_code)) if kept else _successor(str(old_code))
        if found is not None:
            return found
    new = parse_address(address, mode="FROM_2025", level=2)
    if new.province_code and new.ward:
        # The package numbers some communes differently from the official list: match by name.
        province = f"{int(new.province_code):02d}"
        if kept is not None:
            unit = kept.by_name.get((province, fold(new.ward)))
        else:
            unit = (
                Unit.objects.select_related("parent")
                .filter(edition_id=EDITION, kind="commune", parent__code=province, search_name=fold(new.ward))
                .order_by("pk")
                .first()
            )
        if unit is not None:
            return unit
    if new.province_code or old.province_code:
        raise FeedbackError(
            "address", _("the commune or ward is not clear: write its name and the province or city")
        )
    raise FeedbackError("address", _("no administrative unit of Vietnam has this address"))


def _successions() -> models.QuerySet:
    """The successions of pre-2025 leaves (a commune, or a district without communes), the largest
    share of each first."""
    return (
        Succession.objects.filter(old__edition_id="VN-2021")
        .exclude(Exists(Unit.objects.filter(parent=OuterRef("old"))))
        .order_by("old__code", "-weight", "new__code")
    )


def _successor(old_code: str) -> Unit | None:
    """The 2025 commune that took the largest share of a pre-2025 commune (or island district)."""
    best = _successions().filter(old__code=old_code).select_related("new", "new__parent").first()
    return best.new if best is not None else None


def route(place: Place, kept: Kept | None = None) -> Unit:
    if place.lat is not None or place.lon is not None:
        if place.lat is None or place.lon is None:
            raise FeedbackError(
                "lon" if place.lon is None else "lat",
                _("both a latitude (lat) and a longitude (lon) are needed"),
            )
        if place.address.strip():
            raise FeedbackError("address", _("send one of the two: a place on the map or an address"))
        return route_pin(place.lat, place.lon, kept or kept_now())
    if place.address.strip():
        return route_address(place.address.strip(), kept or kept_now())
    raise FeedbackError("address", _("a place on the map (lat, lon) or an address is needed"))


def handling_unit(category: Category, commune: Unit) -> Unit:
    """The commune, or its province, or the province's department held as an agency unit
    (code PROVINCE-AGENCY, e.g. 79-SATTP); a province without that department handles it itself."""
    province = commune.parent
    if category.handler == Handler.AGENCY and province is not None and category.agency:
        agency = Unit.objects.filter(
            edition_id=province.edition_id,
            parent=province,
            kind="agency",
            code=f"{province.code}-{category.agency}",
        ).first()
        return agency or province
    if category.handler in (Handler.PROVINCE, Handler.AGENCY) and province is not None:
        return province
    return commune


def add_agency(*, actor: User | None, province: str, code: str, name: str) -> Unit:
    """A provincial department as an agency unit under its province (VN-2025:79 + SATTP → 79-SATTP),
    so that categories with handler 'agency' reach it and its officials get grants on it."""
    try:
        parent = Unit.objects.ref(province if ":" in province else f"{EDITION}:{province}")
    except (Unit.DoesNotExist, ValueError):
        raise FeedbackError("province", _("no province or city '%(ref)s'") % {"ref": province[:40]}) from None
    if parent.kind != "province" or parent.edition_id != EDITION:
        raise FeedbackError("province", _("a province or city of the 2025 map is needed"))
    code = _fit("code", code).strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{2,12}", code):
        raise FeedbackError(
            "code", _("a department's code: 2 to 12 unaccented letters or digits, e.g. SATTP")
        )
    name = _fit("name", name).strip()
    if not name:
        raise FeedbackError("name", _("the department's name is needed"))
    with transaction.atomic():
        unit, created = Unit.objects.update_or_create(
            edition_id=EDITION,
            code=f"{parent.code}-{code}",
            defaults={
                "name": name[:200],
                "short_name": name[:200],
                "kind": "agency",
                "level": parent.level + 1,
                "parent": parent,
                "path": f"{parent.path}{parent.code}-{code}/",
                "search_name": fold(name)[:255],
            },
        )
        audit(actor, "feedback.agency", unit.ref, name=name, created=created)
    return unit


# Live events for the rooms and the wall's ticker (docs/feedback.md: event `feedback`)


def publish_item(item: Feedback, event: str) -> None:
    """Inside the verb's transaction: one `feedback` event, sent when it commits, to the rooms of the
    place's commune and every unit above it. It names the category and the commune, never the
    citizen's text, phone or address."""
    place = item.place_unit
    province = place.parent if place.parent is not None and place.parent.kind == "province" else None
    now = timezone.now()
    data = {
        "code": item.code,
        "event": event,
        "category": item.category_id,
        "category_name": item.category.name,
        "place": place.name,
        "province": province.ref if province else None,
        "province_name": province.name if province else None,
        "unit": item.unit.ref,
        "unit_name": item.unit.name,
        "at": now.isoformat(),
        "overdue": is_overdue(item, now),
    }
    publish_on_commit(area_keys(place.edition_id, place.path), "feedback", data)


# Intake


@dataclass(frozen=True)
class Upload:
    name: str
    content: bytes


def _category(code: str, kept: Kept | None) -> Category:
    found = kept.categories.get(code) if kept else Category.objects.filter(code=code, active=True).first()
    if found is None:
        raise FeedbackError(
            "category", _("no category '%(code)s'; see GET /api/v1/feedback/categories") % {"code": code[:40]}
        )
    return found


def _photos(photos: Sequence[Upload]) -> list[tuple[str, bytes]]:
    """Photos as they are stored, a citizen's at intake as an official's with an answer or a progress
    update: at most 3, 5 MB each, JPEG or PNG by their first bytes, then without their metadata
    (feedback.photos: a phone's photo carries the GPS position where it was taken, often the sender's
    home, and the device). Checked whole before anything is written; a file whose structure cannot be
    followed is refused (415), since its metadata could not be said to be gone."""
    if len(photos) > MAX_PHOTOS:
        raise FeedbackError(
            "photos", _("at most %(max)d photos; %(n)d were sent") % {"max": MAX_PHOTOS, "n": len(photos)}
        )
    typed = []
    for i, photo in enumerate(photos):
        if len(photo.content) > MAX_PHOTO_BYTES:
            raise FeedbackError(f"photos[{i}]", TOO_LARGE % {"mb": MAX_PHOTO_BYTES // 2**20}, status=413)
        kind = content_type(photo.content)
        if kind not in PHOTO_TYPES:
            raise FeedbackError(f"photos[{i}]", _("only JPEG or PNG photos are taken"), status=415)
        try:
            typed.append((kind, strip_metadata(kind, photo.content)))
        except UnreadablePhoto:
            raise FeedbackError(
                f"photos[{i}]", _("the photo cannot be read: its file is damaged or incomplete"), status=415
            ) from None
    return typed


def _phone(raw: str) -> str | None:
    if not raw.strip():
        return None
    try:
        number = normalise(raw)
    except PersonIdError:
        number = ""
    if not number.startswith("+84"):
        raise FeedbackError("phone", _("not a Vietnamese mobile number (e.g. 0912 345 678)"))
    return number


def _throttle_key(scope: str, value: str) -> str:
    # A keyed hash: the table never holds an address or a number, and cannot be reversed by trying all.
    return hmac.new(settings.PSEUDONYM_KEY, f"feedback:{scope}:{value}".encode(), hashlib.sha256).hexdigest()


def _phone_tail(number: str) -> str:
    return f"…{number[-3:]}"


def confirm_sender(*, number: str, code: str, now: datetime, sent: dict[Throttle.Scope, int]) -> None:
    """A repeated sender (CONFIRM_AFTER) needs a confirmed phone: without a number, 428 asking for one;
    with a number and no code, a 6-digit code by SMS and 428; with the code, the phone is confirmed for
    a day. Each refusal says why. Runs outside the report's own transaction: a code sent stays valid.
    `sent`: the sender's reports before this one in their current windows, by scope (the client's
    address, the phone), as submit counted them."""
    repeated = None
    if sent[Throttle.Scope.CLIENT] >= CONFIRM_AFTER[Throttle.Scope.CLIENT]:
        repeated = _("have sent %(n)d reports from this device in 1 hour") % {
            "n": sent[Throttle.Scope.CLIENT]
        }
    if sent[Throttle.Scope.PHONE] >= CONFIRM_AFTER[Throttle.Scope.PHONE]:
        repeated = _("have sent %(n)d reports from this phone number in 24 hours") % {
            "n": sent[Throttle.Scope.PHONE]
        }
    code = code.strip()
    if repeated is None:
        return
    if not number:
        raise FeedbackError(
            "phone",
            _(
                "You %(repeated)s: to send more, write a mobile number; a confirmation code is sent to it"
                " by SMS"
            )
            % {"repeated": repeated},
            status=428,
        )
    key = _throttle_key("confirm", number)
    left = 0
    with transaction.atomic():
        row = Confirmation.objects.select_for_update().filter(key=key).first()
        if row is not None and row.confirmed_until is not None and row.confirmed_until > now:
            return
        if code:
            if row is None or not row.code_hash:
                raise FeedbackError(
                    "confirmation",
                    _("no confirmation code for this number yet: send again without one to get one"),
                )
            if row.expires_at <= now or row.attempts >= CONFIRM_ATTEMPTS:
                raise FeedbackError(
                    "confirmation",
                    _(
                        "the confirmation code has expired or was mistyped too often: send again without it"
                        " for a new one"
                    ),
                )
            if hmac.compare_digest(row.code_hash, _throttle_key("code", f"{number}:{code}")):
                row.code_hash, row.attempts, row.confirmed_until = "", 0, now + CONFIRMED_FOR
                row.save()
                audit(None, "feedback.confirm", "phone", ok=True)
                return
            row.attempts += 1
            row.save(update_fields=["attempts"])
            left = CONFIRM_ATTEMPTS - row.attempts
            # Saved, not rolled back: a wrong code counts (the raise is after the block).
        elif (
            row is not None and row.code_hash and row.sent_at + CONFIRM_RESEND > now and row.expires_at > now
        ):
            raise FeedbackError(
                "confirmation",
                _(
                    "You %(repeated)s: a confirmation code was sent by SMS to the number %(tail)s; send the"
                    " report again with it (it is valid for 10 minutes)"
                )
                % {"repeated": repeated, "tail": _phone_tail(number)},
                status=428,
            )
    if code:
        raise FeedbackError(
            "confirmation", _("wrong confirmation code; %(left)d tries left") % {"left": left}
        )
    fresh = f"{secrets.randbelow(10**6):06d}"
    try:
        send_sms([number], f"Ma xac nhan gui phan anh: {fresh} (hieu luc 10 phut). Dieu hanh.", "")
    except ChannelError as exc:
        raise FeedbackError(
            "confirmation",
            _(
                "You %(repeated)s: a confirmation code by SMS is needed but the message could not be sent"
                " (%(why)s); please try again later"
            )
            % {"repeated": repeated, "why": exc},
            status=503,
            retry_after=60,
        ) from None
    Confirmation.objects.update_or_create(
        key=key,
        defaults={
            "code_hash": _throttle_key("code", f"{number}:{fresh}"),
            "sent_at": now,
            "expires_at": now + CONFIRM_VALID,
            "attempts": 0,
        },
    )
    audit(None, "feedback.confirm", "phone", sent=True)
    raise FeedbackError(
        "confirmation",
        _(
            "You %(repeated)s: a 6-digit confirmation code was sent by SMS to the number %(tail)s; send the"
            " report again with it (field confirmation, valid for 10 minutes)"
        )
        % {"repeated": repeated, "tail": _phone_tail(number)},
        status=428,
    )


def _count(scope: Throttle.Scope, value: str, now: datetime) -> None:
    """Counts one report against the sender, or refuses it (429) when their window is full. Inside
    the report's transaction: a refusal (or any later failure) rolls the count back."""
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(*_count_statement(scope, value, now))
        counted = cursor.fetchone()[0]
    _refuse_if_full(scope, value, counted, now)


def _count_statement(scope: Throttle.Scope, value: str, now: datetime) -> tuple[str, list]:
    """The statement that counts one report against the sender and returns their count with it."""
    key = _throttle_key(scope, value)
    ops = transaction.get_connection().ops
    table, scope_, key_, start, count = map(
        ops.quote_name, (Throttle._meta.db_table, "scope", "key", "window_start", "count")
    )
    over = ops.adapt_datetimefield_value(now - LIMITS[scope][1])  # a window opened by then is over
    # One statement, a round trip instead of four (read, insert, update): a new sender's row, a
    # new window for a sender whose window is over, or one more in the current window. It locks
    # the sender's row until the transaction ends, as SELECT … FOR UPDATE did.
    return (
        f"INSERT INTO {table} ({scope_}, {key_}, {start}, {count}) VALUES (%s, %s, %s, 1)"  # noqa: S608
        f" ON CONFLICT ({scope_}, {key_}) DO UPDATE SET"
        f" {count} = CASE WHEN {table}.{start} <= %s THEN 1 ELSE {table}.{count} + 1 END,"
        f" {start} = CASE WHEN {table}.{start} <= %s THEN excluded.{start} ELSE {table}.{start} END"
        f" RETURNING {count}",
        [scope.value, key, ops.adapt_datetimefield_value(now), over, over],
    )


def _refuse_if_full(scope: Throttle.Scope, value: str, counted: int, now: datetime) -> None:
    limit, window = LIMITS[scope]
    if counted > limit:
        row = Throttle.objects.get(scope=scope, key=_throttle_key(scope, value))
        wait = row.window_start + window - now
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        field = "phone" if scope == Throttle.Scope.PHONE else None
        said = {"n": counted - 1, "hours": window // timedelta(hours=1), "limit": limit, "minutes": minutes}
        raise FeedbackError(
            field,
            (FULL_PHONE if scope == Throttle.Scope.PHONE else FULL_CLIENT) % said,
            status=429,
            retry_after=math.ceil(wait.total_seconds()),
        )


def prune_throttles(now: datetime) -> int:
    """Forget the senders whose window is over (their rows hold nothing: counting one starts a new
    window). Run by the follow-up worker's rounds, not by each report: a report
    would scan every sender's row of the day."""
    longest = max(w for _, w in LIMITS.values())
    return Throttle.objects.filter(window_start__lt=now - longest).delete()[0]


def _fresh_code() -> str:
    return "PA" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


def _new_code() -> str:
    while True:
        code = _fresh_code()
        if not Feedback.objects.filter(code=code).exists():
            return code


def submit(
    *,
    category: str,
    text: str,
    place: Place,
    phone: str = "",
    photos: Sequence[Upload] = (),
    client: str = "",
    confirmation: str = "",
) -> Feedback:
    """A citizen's report: checked whole first, then routed, counted and stored in one transaction.
    A report of the same category at the same place as an open one within the category's window is
    stored as its duplicate (status `merged`): its reporter follows that item."""
    kept = kept_last()
    try:
        checked = _checked(category, text, place, phone, photos, kept or kept_now())
    except FeedbackError:
        if kept is None:
            raise
        # Refused from what this process kept: told only once checked against the current categories
        # and units (a category turned on, units loaded since).
        checked = _checked(category, text, place, phone, photos, kept_now())
    cat, text, number, typed, commune, unit, kept = checked
    now = timezone.now()
    code_given = _fit("confirmation", confirmation)[:12]
    confirmed = False
    for attempt in range(5):
        code = _fresh_code()
        try:
            return _file(code, cat, text, place, number, typed, client, commune, unit, now, confirmed, kept)
        except _Stale:
            # The categories or the units changed since this process read them (rare): read them
            # again and check the report again with them; nothing was written.
            checked = _checked(category, text, place, phone, photos, kept_now())
            cat, text, number, typed, commune, unit, kept = checked
        except _Repeated as repeated:
            # The counts, read with the report's own writes, say the sender must confirm (rare):
            # that report was rolled back; it is filed again once the phone is confirmed. Reading
            # the counts first, for every report, was a round trip each.
            if confirmed:
                raise AssertionError("confirmed twice") from None
            confirm_sender(number=number or "", code=code_given, now=now, sent=repeated.sent)
            confirmed = True
        except IntegrityError:
            # Two reports drew the same code (one in 10^12 for each stored one): draw again. The
            # code is not looked up first: that would be a round trip for every report.
            if attempt == 4 or not Feedback.objects.filter(code=code).exists():
                raise
    raise AssertionError("unreachable")


def _checked(
    category: str, text: str, place: Place, phone: str, photos: Sequence[Upload], kept: Kept | None
) -> tuple[Category, str, str | None, list[tuple[str, bytes]], Unit, Unit, Kept | None]:
    """submit's checks of the whole report, and its routing, with `kept`: the category, the text,
    the phone number, the photos as stored, the commune, the handling unit, and `kept` itself."""
    cat = _category(_fit("category", category), kept)
    text = _fit("text", text, prose=True).strip()
    if not text:
        raise FeedbackError("text", _("the report's text is needed"))
    if len(text) > MAX_TEXT:
        raise FeedbackError("text", TOO_LONG % {"n": len(text), "max": MAX_TEXT})
    number = _phone(_fit("phone", phone))
    _fit("address", place.address)
    typed = _photos(photos)
    commune = route(place, kept)
    return cat, text, number, typed, commune, handling_unit(cat, commune), kept


class _Stale(Exception):
    pass


class _Repeated(Exception):
    def __init__(self, sent: dict[Throttle.Scope, int]) -> None:
        self.sent = sent


def _file(
    code: str,
    cat: Category,
    text: str,
    place: Place,
    number: str | None,
    typed: list[tuple[str, bytes]],
    client: str,
    commune: Unit,
    unit: Unit,
    now: datetime,
    confirmed: bool,
    kept: Kept | None,
) -> Feedback:
    """submit's writes, in one transaction: the senders counted, the phone in the vault, the report,
    its first history step and its audit entry (the last three in one round trip on PostgreSQL when
    it is not a duplicate), its photos. The senders' counts and the duplicate search go in one round
    trip too, and with them the data versions that `kept` (what the report was checked and routed
    with) was read under. Raises, rolled back: _Stale when those versions moved, _Repeated when the
    counts ask for a confirmed phone and the sender was not `confirmed` yet."""
    with transaction.atomic():
        address = place.address.strip()[:300]
        senders = {Throttle.Scope.CLIENT: client, Throttle.Scope.PHONE: number or ""}
        counting = [(scope, value) for scope, value in senders.items() if value]
        search = _same_report_query(cat, commune, now)
        found = run_together(
            [_count_statement(scope, value, now) for scope, value in counting]
            + ([search.query.get_compiler(using=search.db).as_sql()] if search is not None else [])
            + ([versions.current_statement(KEPT_SOURCES)] if kept is not None else [])
        )
        if kept is not None and versions.versions_of(KEPT_SOURCES, found[-1]) != kept.versions:
            raise _Stale
        counted = {scope: rows[0][0] for (scope, _value), rows in zip(counting, found, strict=False)}
        sent = {scope: counted.get(scope, 1) - 1 for scope in senders}
        if not confirmed and any(sent[scope] >= CONFIRM_AFTER[scope] for scope in senders):
            raise _Repeated(sent)
        for scope, value in counting:
            _refuse_if_full(scope, value, counted[scope], now)
        phone_key = None
        if number:
            phone_key, sealed = vault.seal(number)
            vault.store([(phone_key, sealed)])
        candidates = found[len(counting)] if search is not None else []
        primary = _same_report(candidates, place.lat, place.lon, address)
        item = Feedback(
            code=code,
            category=cat,
            text=text,
            unit=primary.unit if primary else unit,
            place_unit=commune,
            lat=place.lat,
            lon=place.lon,
            address=address,
            phone_key=phone_key,
            received_at=now,
            assigned_at=now,
            forward_due=now + timedelta(minutes=cat.forward_minutes),
            answer_due=now + timedelta(days=cat.answer_days),
            status=Status.MERGED if primary else Status.RECEIVED,
            merged_into=primary,
        )
        received = Event(feedback=item, kind=EventKind.RECEIVED, at=now, unit=item.unit)
        entry = AuditEntry(
            actor_name="system",
            action="feedback.submit",
            target=code,
            detail={
                "unit": unit.ref,
                "category": cat.code,
                "photos": len(typed),
                "phone": short(phone_key) if phone_key else None,
                "merged_into": primary.code if primary else None,
            },
        )
        if primary is None:
            insert_together(item, linked=[received], link="feedback", others=[entry])
        else:  # a duplicate: its steps, the primary's and the primary's count go with it, in one round trip
            merged, joined = _join_steps(item, primary, now, actor=None)
            insert_together(
                item,
                linked=[received, merged],
                link="feedback",
                others=[joined, entry],
                also=[_more_reporters(primary, item.reporters)],
            )
            primary.reporters += item.reporters
        for kind, content in typed:
            digest = hashlib.sha256(content).hexdigest()
            photo = Photo(feedback=item, content_type=kind, size=len(content), sha256=digest)
            photo.file.save(digest, ContentFile(content), save=False)
            photo.save()
        publish_item(primary or item, "merged" if primary else "new")
    return item


def _same_place(
    lat: float | None, lon: float | None, address: str, other: tuple[float | None, float | None, str]
) -> bool:
    """Whether a report at (lat, lon) or `address` is at the same place as `other`'s (lat, lon, address)."""
    o_lat, o_lon, o_address = other
    if lat is not None and lon is not None and o_lat is not None and o_lon is not None:
        return _km(lat, lon, o_lat, o_lon) * 1000 <= SAME_PLACE_M
    if address and o_address:
        return " ".join(fold(address).split()) == " ".join(fold(o_address).split())
    return False


def _same_report_query(cat: Category, commune: Unit, now: datetime) -> models.QuerySet | None:
    """The open reports a new one of the category in the commune may duplicate: within the window,
    oldest first (found by the index feedback_dupes); None when the category never merges."""
    if not cat.merge_hours:
        return None
    return (
        # Only the reports are locked, never their category or commune: a lock there would make every
        # other report of the category wait for this one's commit. Their places alone are read: most
        # reports duplicate none, and building each candidate with its units cost more than the query.
        Feedback.objects.select_for_update()
        .filter(
            category=cat,
            place_unit=commune,
            merged_into__isnull=True,
            status__in=OPEN,
            received_at__gte=now - timedelta(hours=cat.merge_hours),
        )
        .order_by("received_at", "id")
        .values_list("id", "lat", "lon", "address")[:200]
    )


def _same_report(
    candidates: Sequence[tuple], lat: float | None, lon: float | None, address: str
) -> Feedback | None:
    """The open report this one duplicates among the candidates (_same_report_query's rows, locked):
    same category, same commune and place, within the window."""
    found = next((pk for pk, *where in candidates if _same_place(lat, lon, address, tuple(where))), None)
    if found is None:
        return None
    # Locked above; with its units, as the live event names its commune's province.
    return Feedback.objects.select_related("unit", "category", "place_unit__parent").get(pk=found)


def _join(item: Feedback, primary: Feedback, now: datetime, *, actor: User | None) -> None:
    """The item follows `primary` from now on (an official's merge; intake's is in _file's one trip)."""
    Feedback.objects.filter(pk=primary.pk).update(reporters=models.F("reporters") + item.reporters)
    Feedback.objects.filter(merged_into=item).update(merged_into=primary)  # its own come along
    primary.reporters += item.reporters
    Event.objects.bulk_create(_join_steps(item, primary, now, actor=actor))


def _join_steps(item: Feedback, primary: Feedback, now: datetime, *, actor: User | None) -> list[Event]:
    """A merge's two history steps: the item's (merged into the primary) and the primary's (joined)."""
    unit = primary.unit
    return [
        Event(feedback=item, kind=EventKind.MERGED, at=now, unit=unit, actor=actor, note=primary.code),
        Event(feedback=primary, kind=EventKind.JOINED, at=now, unit=unit, actor=actor),
    ]


def _more_reporters(primary: Feedback, n: int) -> tuple[str, Sequence]:
    """The statement that adds n reporters to the primary (as _join's update), for insert_together."""
    query = UpdateQuery(Feedback)
    query.add_update_values({"reporters": models.F("reporters") + n})
    query.add_q(Q(pk=primary.pk))
    sql, params = query.get_compiler(connection=transaction.get_connection()).as_sql()
    return sql, params


def import_incidents(*, batch: int = 1000) -> tuple[int, int]:
    """The incident reports that source platforms sent to the warehouse since the last import, as
    items (one per report, never twice: `incident_id` is unique). Run by one process at a time
    (`dieuhanh feedback import-incidents`). A report keeps its own time as `received_at`, but its
    deadlines run from now: the unit could not act on it before it arrived here. Returns (reports read,
    items made): a report whose commune has no 2025 successor is read and skipped."""
    last = Feedback.objects.aggregate(last=Max("incident_id"))["last"] or 0
    rows = list(IncidentReport.objects.filter(id__gt=last).order_by("id")[:batch])
    if not rows:
        return 0, 0
    categories = {c.code: c for c in Category.objects.filter(active=True)}
    communes = Unit.objects.select_related("parent").in_bulk({r.commune_id for r in rows})
    now = timezone.now()
    made = 0
    with transaction.atomic():
        for row in rows:
            commune = communes.get(row.commune_id)
            if commune is not None and commune.edition_id != EDITION:  # a source still on the old map
                commune = _successor(commune.code)
            cat = categories.get(row.category) or categories.get("other")
            if commune is None or cat is None:
                continue
            unit = handling_unit(cat, commune)
            item = Feedback.objects.create(
                code=_new_code(),
                category=cat,
                text=row.text.strip() or cat.name,
                unit=unit,
                place_unit=commune,
                phone_key=row.person_key,
                incident_id=row.pk,
                received_at=row.at,
                assigned_at=now,
                forward_due=now + timedelta(minutes=cat.forward_minutes),
                answer_due=now + timedelta(days=cat.answer_days),
            )
            Event.objects.create(feedback=item, kind=EventKind.RECEIVED, at=now, unit=unit)
            made += 1
        audit(None, "feedback.import", "incidents", rows=made, last=rows[-1].pk)
    return len(rows), made


def track(code: str) -> Feedback:
    found = None
    if _found(code):
        items = Feedback.objects.select_related(
            "category", "unit", "place_unit", "merged_into", "merged_into__unit", "merged_into__category"
        )
        found = items.filter(code=code.upper()).first()
    if found is None:
        raise FeedbackError("code", _("no report with code '%(code)s'") % {"code": code[:20]}, status=404)
    return found


def rate(*, code: str, stars: int) -> Feedback:
    """The citizen's mark on the answer (1 to 5), once: whoever holds the tracking code is the citizen."""
    if not 1 <= stars <= 5:
        raise FeedbackError("stars", _("a rating is 1 to 5 stars"))
    with transaction.atomic():
        item = track(code)
        item = (
            Feedback.objects.select_for_update(of=("self",))
            .select_related("category", "unit", "place_unit", "merged_into")
            .get(pk=item.pk)
        )
        followed = item.merged_into if item.merged_into_id else item
        if followed is None or followed.status != Status.ANSWERED:
            raise FeedbackError("stars", _("a report is rated once it is answered"), status=409)
        if item.rating is not None:
            raise FeedbackError("stars", _("this report has been rated"), status=409)
        item.rating, item.rated_at = stars, timezone.now()
        item.save(update_fields=["rating", "rated_at"])
        audit(None, "feedback.rate", item.code, unit=item.unit.ref, stars=stars)
    return item


def public_text(text: str) -> str:
    """The text as the public page shows it: long runs of digits (phone, ID numbers) masked."""
    return _LONG_NUMBER.sub("***", text)


# A unit's queue and its verbs


def handling_area(user: User) -> Area:
    return Area.union(user.area(role=role) for role in HANDLER_ROLES)


def queue_unit(user: User, ref: str) -> Unit:
    return unit_in_area(ref, handling_area(user))


SHOWN_WITH = ("category", "unit", "place_unit", "merged_into")  # what a queue's item shows


def overdue_q(now: datetime) -> Q:
    return Q(status=Status.RECEIVED, forward_due__lt=now) | Q(
        status__in=[Status.RECEIVED, Status.ACCEPTED], answer_due__lt=now
    )


def is_overdue(item: Feedback, now: datetime) -> bool:
    """overdue_q for an item in hand."""
    return _late(item.status, item.forward_due, item.answer_due, now)


def _late(status: str, forward_due: datetime, answer_due: datetime, now: datetime) -> bool:
    open_ = status in (Status.RECEIVED, Status.ACCEPTED)
    return (status == Status.RECEIVED and forward_due < now) or (open_ and answer_due < now)


def queue(
    user: User, ref: str, *, overdue: bool = False, status: str | None = None, escalated: bool = False
) -> FeedbackQuerySet:
    """The items handled by the unit and those below it, oldest deadline first. Duplicates merged into
    another item are listed only when asked for (status=merged): their item counts their reporters."""
    items = Feedback.objects.under(queue_unit(user, ref))
    if status == "open":  # what is left to do: received, taken or under way, not answered
        items = items.filter(status__in=OPEN)
    elif status:
        items = items.filter(status=status)
    else:
        items = items.exclude(status=Status.MERGED)
    if overdue:
        items = items.filter(overdue_q(timezone.now()))
    if escalated:
        items = items.filter(escalated_at__isnull=False)
    return items.select_related(*SHOWN_WITH).order_by("answer_due", "id")


# A queue's total is counted up to this and then shown as "more than" it (Vietnamese "hơn 10.000"):
# an exact count of a province's queue read every one of its index entries (HCMC: tens of thousands)
# for a figure nobody pages through; past it, the tabs and a commune narrow the list.
COUNT_CAP = 10_000


def capped_count(items: models.QuerySet) -> tuple[int, bool]:
    """How many items, counted up to COUNT_CAP, and whether there are more (then the count is the cap)."""
    n = items.order_by()[: COUNT_CAP + 1].count()
    return min(n, COUNT_CAP), n > COUNT_CAP


def _page_ids(items: FeedbackQuerySet, limit: int, offset: int) -> models.QuerySet | RawSQL:
    """The ids of a page of the queue, in its order, for `pk__in`. On PostgreSQL, for a queue held
    to a subtree (FeedbackQuerySet.under): each unit's own first rows from the reports' (unit,
    answer_due, id, …) index, then merged — a province's 170 units read at most a page each, where
    one sort of the whole queue read every one of its tens of thousands of reports."""
    ids = items.order_by("answer_due", "id").values("id")
    if items.subtree is None or connections[items.db].vendor != "postgresql":
        return ids[offset : offset + limit]
    each = ids.filter(unit_id=RawSQL('"queue_unit"."id"', ())).values("id", "answer_due")[: offset + limit]
    inner, params = each.query.sql_with_params()
    units, unit_params = Unit.objects.under(items.subtree).values("id").query.sql_with_params()
    # Django's own compiled SQL, its values passed as parameters; limit and offset are numbers.
    return RawSQL(  # noqa: S611
        f'SELECT "page"."id" FROM ({units}) AS "queue_unit" CROSS JOIN LATERAL ({inner}) AS "page"'  # noqa: S608
        f' ORDER BY "page"."answer_due", "page"."id" LIMIT {int(limit)} OFFSET {int(offset)}',
        (*unit_params, *params),
    )


def queue_page(items: FeedbackQuerySet, limit: int, offset: int = 0) -> list[Feedback]:
    """A page of the queue, each item with its `photo_count`, in one query: the page's ids in the
    queue's order from the reports' index on (unit, answer_due, id, status, forward_due, escalated_at)
    alone, then those rows. A province holds tens of thousands of reports: sorting whole rows read
    each of them from the table."""
    ids = _page_ids(items, limit, offset)
    photos = Photo.objects.filter(feedback=OuterRef("pk")).order_by().values("feedback")
    counted = photos.annotate(n=Count("id")).values("n")
    page = (
        Feedback.objects.filter(pk__in=ids)
        .select_related(*SHOWN_WITH)
        .annotate(photo_count=Coalesce(Subquery(counted), 0))
        .order_by("answer_due", "id")
    )
    return list(page)


QUEUE_COLUMNS = {  # the API's queue item (feedback.api.QueueItem) ← the columns it is read from
    "code": "code",
    "category": "category_id",
    "text": "text",
    "unit_edition": "unit__edition_id",
    "unit_code": "unit__code",
    "unit_name": "unit__name",
    "place": "place_unit__name",
    "address": "address",
    "lat": "lat",
    "lon": "lon",
    "status": "status",
    "received_at": "received_at",
    "forward_due": "forward_due",
    "answer_due": "answer_due",
    "reporters": "reporters",
    "merged_into": "merged_into__code",
    "escalated_at": "escalated_at",
    "directive": "directive_id",
    "task": "task_id",
}


def queue_rows(items: FeedbackQuerySet, limit: int, now: datetime) -> list[dict]:
    """queue_page as the API shows it, read as plain rows in one query: the page's ids from the index
    (as queue_page), then only the columns shown, joined, with no model built per report and its
    category, units and merged item (two thirds of a queue request's time went to building them)."""
    ids = _page_ids(items, limit, 0)
    photos = Photo.objects.filter(feedback=OuterRef("pk")).order_by().values("feedback")
    counted = photos.annotate(n=Count("id")).values("n")
    rows = (
        Feedback.objects.filter(pk__in=ids)
        .annotate(photo_count=Coalesce(Subquery(counted), 0))
        .order_by("answer_due", "id")
        .values_list("photo_count", *QUEUE_COLUMNS.values())
    )
    found = []
    for photo_count, *values in rows:
        row = dict(zip(QUEUE_COLUMNS, values, strict=True))
        row["photos"] = photo_count
        row["unit"] = f"{row.pop('unit_edition')}:{row.pop('unit_code')}"
        # Digit runs (phone and ID numbers the citizen wrote) masked: the API never shows them.
        row["text"] = public_text(row["text"])
        row["overdue"] = _late(row["status"], row["forward_due"], row["answer_due"], now)
        found.append(row)
    return found


def item_for(user: User, code: str) -> Feedback:
    if not _found(code):
        raise FeedbackError("code", NOT_HERE, status=404)
    found: Feedback | None = (
        Feedback.objects.within(handling_area(user))
        .select_related("category", "unit", "place_unit", "merged_into")
        .filter(code=code.upper())
        .first()
    )
    if found is None:
        raise FeedbackError("code", NOT_HERE_CODE % {"code": code[:20]}, status=404)
    return found


def photo_of(item: Feedback, number: int) -> Photo:
    """The item's photo by its place in the report (1 to 3), in the order it was sent."""
    found = None
    if 1 <= number <= MAX_PHOTOS:  # bounded before it becomes an OFFSET
        found = next(iter(item.photos.order_by("id")[number - 1 : number]), None)
    if found is None:
        raise FeedbackError(
            "number", _("report %(code)s has no photo %(n)d") % {"code": item.code, "n": number}, status=404
        )
    return found


def _locked(actor: User, item: Feedback) -> Feedback:
    """The item, locked, if the actor may act on it where it is now (a forward may have moved it)."""
    found = (
        Feedback.objects.select_for_update().select_related("category", "unit", "place_unit").get(pk=item.pk)
    )
    if not handling_area(actor).contains(found.unit):
        raise FeedbackError("code", NOT_HERE, status=404)
    if found.status == Status.MERGED:
        primary = Feedback.objects.filter(pk=found.merged_into_id).values_list("code", flat=True).first()
        raise FeedbackError(
            "code",
            _("the report was merged into %(code)s: handle report %(code)s") % {"code": primary},
            status=409,
        )
    return found


def accept(*, actor: User, item: Feedback) -> Feedback:
    """The unit takes the item as its own: it is no longer waiting to be passed on."""
    with transaction.atomic():
        item = _locked(actor, item)
        if item.status != Status.RECEIVED:
            raise FeedbackError(
                "status",
                _("the report is '%(status)s'") % {"status": item.get_status_display()},
                status=409,
            )
        now = timezone.now()
        item.status = Status.ACCEPTED
        item.save(update_fields=["status"])
        Event.objects.create(feedback=item, kind=EventKind.ACCEPTED, at=now, unit=item.unit, actor=actor)
        audit(actor, "feedback.accept", item.code, unit=item.unit.ref)
    return item


def answer(*, actor: User, item: Feedback, text: str, photos: Sequence[Upload] = ()) -> Feedback:
    """The public answer, with up to 3 photos: the citizen and everyone reading the public page see
    them."""
    text = _post_text(text, _("the answer's text is needed"))
    cleaned = _photos(photos)
    stored: list[PostPhoto] = []
    with _removed_unless_saved(stored), transaction.atomic():
        item = _locked(actor, item)
        if item.status == Status.ANSWERED:
            raise FeedbackError("status", _("the report has been answered"), status=409)
        now = timezone.now()
        item.status, item.answer, item.answered_at = Status.ANSWERED, text, now
        item.save(update_fields=["status", "answer", "answered_at"])
        _posted(actor, item, EventKind.ANSWERED, text, now, cleaned, stored, verb="answer")
    return item


def post_progress(*, actor: User, item: Feedback, text: str, photos: Sequence[Upload] = ()) -> Feedback:
    """A public progress update on an item not answered yet, with up to 3 photos. HCMC 1022's rule is
    "answered within 5 days, or progress is posted with a photo": with at least one photo the item is
    `progress` and its first-answer deadline is met (no longer overdue, no more reminders or
    escalation; it stays open until answered). Without a photo it is a note to the citizen, and
    takes a received item as Nhận xử lý does."""
    text = _post_text(text, _("write what has been done so far"))
    cleaned = _photos(photos)
    stored: list[PostPhoto] = []
    with _removed_unless_saved(stored), transaction.atomic():
        item = _locked(actor, item)
        if item.status == Status.ANSWERED:
            raise FeedbackError(
                "status", _("the report is answered: progress is no longer posted on it"), status=409
            )
        now = timezone.now()
        was = item.status
        if cleaned:
            item.status = Status.PROGRESS
        elif item.status == Status.RECEIVED:
            item.status = Status.ACCEPTED
        if item.status != was:
            item.save(update_fields=["status"])
        _posted(actor, item, EventKind.PROGRESS, text, now, cleaned, stored, verb="progress")
    return item


def _post_text(text: str, missing: Promise) -> str:
    """The text of an answer or a progress update, which the public reads: needed, and not too long."""
    text = _fit("text", text, prose=True).strip()
    if not text:
        raise FeedbackError("text", missing)
    if len(text) > MAX_TEXT:
        raise FeedbackError("text", TOO_LONG % {"n": len(text), "max": MAX_TEXT})
    return text


def _posted(
    actor: User,
    item: Feedback,
    kind: str,
    text: str,
    now: datetime,
    cleaned: list[tuple[str, bytes]],
    stored: list[PostPhoto],
    *,
    verb: str,
) -> None:
    """An answer's or a progress update's public step: its history event with its photos, the audit
    row (late or not) and the rooms' live event (named as the step: answered, progress), inside the
    verb's transaction."""
    event = Event.objects.create(feedback=item, kind=kind, at=now, unit=item.unit, actor=actor, note=text)
    _attach(event, cleaned, stored)
    audit(
        actor,
        f"feedback.{verb}",
        item.code,
        unit=item.unit.ref,
        late=now > item.answer_due,
        photos=len(cleaned),
    )
    publish_item(item, str(kind))


def read_uploads(files: Sequence[UploadedFile]) -> list[Upload]:
    """Uploaded photos (the API's or a page's form) as Uploads, one larger than MAX_PHOTO_BYTES
    refused (413) before it is read into memory."""
    uploads = []
    for i, f in enumerate(files):
        if (f.size or 0) > MAX_PHOTO_BYTES:
            raise FeedbackError(f"photos[{i}]", TOO_LARGE % {"mb": MAX_PHOTO_BYTES // 2**20}, status=413)
        uploads.append(Upload(f.name or "", f.read(MAX_PHOTO_BYTES + 1)))
    return uploads


def _attach(event: Event, photos: list[tuple[str, bytes]], stored: list[PostPhoto]) -> None:
    for kind, content in photos:
        digest = hashlib.sha256(content).hexdigest()
        photo = PostPhoto(event=event, content_type=kind, size=len(content), sha256=digest)
        photo.file.save(digest, ContentFile(content), save=False)
        stored.append(photo)
    PostPhoto.objects.bulk_create(stored)


@contextmanager
def _removed_unless_saved(stored: list[PostPhoto]) -> Iterator[None]:
    """Around a verb's transaction: the photo files it stored are removed again if it rolls back."""
    try:
        yield
    except BaseException:
        for photo in stored:
            photo.file.delete(save=False)
        raise


def post_photo(code: str, photo_id: int) -> PostPhoto:
    """A photo posted with an item's answer or progress update, by the item's code (public)."""
    found = None
    if _found(code) and 0 < photo_id < 2**62:
        found = (
            PostPhoto.objects.filter(pk=photo_id, event__feedback__code=code.upper())
            .select_related("event")
            .first()
        )
    if found is None:
        raise FeedbackError("photo", _("no such photo"), status=404)
    return found


def forward(*, actor: User, item: Feedback, to: str, reason: str) -> Feedback:
    """Pass the item to the unit it belongs to, saying why. Naming that unit is required: a bare
    "not ours" leaves the citizen nowhere. The answer deadline keeps running from receipt."""
    reason = _fit("reason", reason, prose=True).strip()
    _fit("to", to)
    if len(reason) < 10:
        raise FeedbackError("reason", _("say why it is passed on (at least 10 characters)"))
    try:
        target = Unit.objects.ref(to if ":" in to else f"{EDITION}:{to}")
    except (Unit.DoesNotExist, ValueError):
        raise FeedbackError(
            "to", _("no unit '%(ref)s': name the receiving unit, e.g. VN-2025:26740") % {"ref": to[:40]}
        ) from None
    if target.edition_id != EDITION or target.kind not in ("commune", "province", "agency"):
        raise FeedbackError(
            "to", _("the receiving unit is a commune, ward, province, city or agency of the 2025 map")
        )
    with transaction.atomic():
        item = _locked(actor, item)
        if item.status == Status.ANSWERED:
            raise FeedbackError(
                "status", _("the report has been answered: it cannot be passed on"), status=409
            )
        if target.pk == item.unit_id:
            raise FeedbackError("to", _("the report is with this unit already"))
        now = timezone.now()
        was = item.unit
        item.unit, item.status, item.assigned_at = target, Status.RECEIVED, now
        item.forward_due = now + timedelta(minutes=item.category.forward_minutes)
        item.save(update_fields=["unit", "status", "assigned_at", "forward_due"])
        Event.objects.create(
            feedback=item, kind=EventKind.FORWARDED, at=now, unit=target, actor=actor, note=reason
        )
        Feedback.objects.filter(merged_into=item).update(unit=target)  # the duplicates follow
        audit(actor, "feedback.forward", item.code, frm=was.ref, to=target.ref, reason=reason)
        publish_item(item, "forwarded")
    return item


def merge(*, actor: User, item: Feedback, into: str) -> Feedback:
    """An official merges a duplicate the intake did not recognise (another address for the same
    place) into an open item of the same category in their area: its reporter follows that item."""
    with transaction.atomic():
        item = _locked(actor, item)
        if item.status == Status.ANSWERED:
            raise FeedbackError("status", _("the report has been answered: it cannot be merged"), status=409)
        if not _found(into):
            raise FeedbackError("into", NOT_HERE, status=404)
        primary: Feedback | None = (
            Feedback.objects.within(handling_area(actor)).filter(code=into.strip().upper()).first()
        )
        if primary is None:
            raise FeedbackError("into", NOT_HERE_CODE % {"code": into[:20]}, status=404)
        primary = _locked(actor, primary)
        if primary.pk == item.pk:
            raise FeedbackError("into", _("a report is not merged into itself"))
        if primary.category_id != item.category_id:
            raise FeedbackError(
                "into",
                _("report %(code)s is of another category: only reports of one category are merged")
                % {"code": primary.code},
            )
        if primary.status == Status.ANSWERED:
            raise FeedbackError(
                "into", _("report %(code)s has been answered") % {"code": primary.code}, status=409
            )
        now = timezone.now()
        item.status, item.merged_into, item.unit = Status.MERGED, primary, primary.unit
        item.save(update_fields=["status", "merged_into", "unit"])
        _join(item, primary, now, actor=actor)
        audit(actor, "feedback.merge", item.code, into=primary.code)
        publish_item(primary, "merged")
    return item


def unmerge(*, actor: User, item: Feedback, reason: str) -> Feedback:
    """Undo a merge, the intake's or an official's, that joined reports about different things: the
    duplicate is an item of its own again, waiting to be taken by the unit that handles the item it
    followed (inside the caller's area; it forwards it, with a reason, if it belongs elsewhere). Its
    answer deadline still runs from its receipt. Once that item is answered, the merge stays: its
    reporters have read the answer and may have rated it."""
    reason = _fit("reason", reason, prose=True).strip()
    if len(reason) < 10:
        raise FeedbackError("reason", _("say why they are parted (at least 10 characters)"))
    area = handling_area(actor)
    with transaction.atomic():
        rows = Feedback.objects.select_for_update().select_related("category", "unit", "place_unit")
        found = rows.get(pk=item.pk)
        if not area.contains(found.unit):
            raise FeedbackError("code", NOT_HERE, status=404)
        if found.status != Status.MERGED or found.merged_into_id is None:
            raise FeedbackError(
                "code", _("report %(code)s is not merged with another") % {"code": found.code}, status=409
            )
        primary = Feedback.objects.select_for_update().select_related("unit").get(pk=found.merged_into_id)
        if primary.status == Status.ANSWERED:
            raise FeedbackError(
                "code",
                _("report %(code)s, which this one follows, has been answered: they are no longer parted")
                % {"code": primary.code},
                status=409,
            )
        now = timezone.now()
        found.status, found.merged_into, found.unit, found.reporters = Status.RECEIVED, None, primary.unit, 1
        found.assigned_at, found.forward_due = now, now + timedelta(minutes=found.category.forward_minutes)
        # A directive or task it had only as the item's follower is not its own.
        if found.directive_id is not None and found.directive_id == primary.directive_id:
            found.directive = None
        if found.task_id is not None and found.task_id == primary.task_id:
            found.task = None
        changed = ["status", "merged_into", "unit", "reporters", "assigned_at", "forward_due", "directive"]
        found.save(update_fields=[*changed, "task"])
        # Reporters who had followed this one came along to the item when it was merged (_join) and
        # stay there: the item loses this reporter alone.
        Feedback.objects.filter(pk=primary.pk).update(reporters=Greatest(models.F("reporters") - 1, 1))
        Event.objects.create(
            feedback=found, kind=EventKind.UNMERGED, at=now, unit=found.unit, actor=actor, note=reason
        )
        Event.objects.create(
            feedback=primary, kind=EventKind.LEFT, at=now, unit=primary.unit, actor=actor, note=found.code
        )
        audit(actor, "feedback.unmerge", found.code, frm=primary.code, unit=found.unit.ref, reason=reason)
        publish_item(found, "unmerged")
    return found


# Reports become work: a directive or a task, with the existing verbs, linked both ways


def _linkable(user: User, codes: Sequence[str]) -> list[Feedback]:
    if not codes:
        raise FeedbackError("codes", _("at least one report's code is needed"))
    if len(codes) > 100:
        raise FeedbackError("codes", _("at most 100 reports at a time"))
    items = []
    for code in dict.fromkeys(c.strip().upper() for c in codes):
        item = item_for(user, code)
        if item.status == Status.MERGED and item.merged_into is not None:
            item = item_for(user, item.merged_into.code)
        items.append(item)
    return list({i.pk: i for i in items}.values())


def _work_body(items: list[Feedback], body: str) -> str:
    lines = (
        [body.strip(), "", "Từ phản ánh của người dân:"] if body.strip() else ["Từ phản ánh của người dân:"]
    )
    for i in items:
        lines.append(f"- {i.code} ({i.category.name}, {i.place_unit.name}): {public_text(i.text)[:300]}")
    return "\n".join(lines)


def to_directive(
    *,
    actor: User,
    codes: Sequence[str],
    title: str,
    body: str = "",
    targets: Sequence[str] = (),
    deadline: datetime | None = None,
    priority: str = Priority.NORMAL,
) -> Directive:
    """A report or a group of reports becomes a directive, issued with the directives' own verb (its
    rules: a leader or analyst over every target). Targets default to the units handling the reports.
    The directive names the reports (`targets.feedback`, its body) and each report names the directive."""
    items = _linkable(actor, codes)
    refs = tuple(targets) or tuple(dict.fromkeys(i.unit.ref for i in items))
    data = DirectiveInput(
        title=title,
        body=_work_body(items, body),
        targets=Targets(units=refs),
        priority=priority,
        deadline=deadline,
        kind=DirectiveKind.REPORT_REQUEST if deadline else DirectiveKind.DIRECTIVE,
    )
    with transaction.atomic():
        directive = issue_directive(actor=actor, data=data)
        directive.targets = {**directive.targets, "feedback": [i.code for i in items]}
        directive.save(update_fields=["targets"])
        _linked(actor, items, EventKind.DIRECTIVE, directive=directive)
    return directive


def to_task(
    *, actor: User, codes: Sequence[str], title: str, owner: str = "", due: date | None = None
) -> Task:
    """A report or a group of reports becomes a task with the tasks' own verb; its basis names them."""
    items = _linkable(actor, codes)
    owner = owner or items[0].unit.ref
    basis = "Phản ánh " + ", ".join(i.code for i in items)
    with transaction.atomic():
        task = create_task(actor=actor, data=TaskInput(title=title, owner=owner, basis=basis[:300], due=due))
        _linked(actor, items, EventKind.TASK, task=task)
    return task


def _linked(
    actor: User,
    items: list[Feedback],
    kind: str,
    *,
    directive: Directive | None = None,
    task: Task | None = None,
) -> None:
    now = timezone.now()
    ids = [i.pk for i in items]
    changes: dict[str, Directive | Task | None] = {"directive": directive} if directive else {"task": task}
    Feedback.objects.filter(pk__in=ids).update(**changes)
    Feedback.objects.filter(merged_into_id__in=ids).update(**changes)
    label = f"chỉ đạo #{directive.pk}" if directive else f"nhiệm vụ #{task.pk if task else ''}"
    Event.objects.bulk_create(
        Event(feedback=i, kind=kind, at=now, unit=i.unit, actor=actor, note=label) for i in items
    )
    audit(actor, f"feedback.{kind}", label, codes=[i.code for i in items])


def linked(user: User, *, directive: int | None = None, task: int | None = None) -> FeedbackQuerySet:
    """The reports a directive or task came from, inside the caller's area."""
    items: FeedbackQuerySet = Feedback.objects.within(handling_area(user)).exclude(status=Status.MERGED)
    if directive is not None:
        items = items.filter(directive_id=directive if 0 < directive < 2**62 else 0)
    elif task is not None:
        items = items.filter(task_id=task if 0 < task < 2**62 else 0)
    else:
        raise FeedbackError("directive", _("directive or task is needed"))
    return items.select_related("category", "unit", "place_unit").order_by("received_at", "id")


# The public page


SHOWN_PUBLIC = ("category", "place_unit", "unit")  # what an answered report shows on the public page


def answered(query: str = "", category: str = "") -> FeedbackQuerySet:
    items = Feedback.objects.filter(status=Status.ANSWERED)
    if not (_found(query) and _found(category)):
        return items.none()
    if category:
        items = items.filter(category_id=category)
    if query.strip():
        q = query.strip()
        # The communes whose name holds the words, as ids (a small table): the reports' own index on
        # their commune then joins the text's and the answer's (trigram indexes on PostgreSQL).
        places = list(
            Unit.objects.filter(edition_id=EDITION, search_name__contains=fold(q)).values_list(
                "id", flat=True
            )[:500]
        )
        items = items.filter(Q(text__icontains=q) | Q(answer__icontains=q) | Q(place_unit_id__in=places))
    return items.select_related(*SHOWN_PUBLIC).order_by("-answered_at", "-id")


def answered_page(items: FeedbackQuerySet, offset: int, limit: int) -> list[Feedback]:
    """A page of answered(): the page's ids first, from the answered reports' partial indexes alone,
    then those rows with their category and units. In one query, a search's matches (hundreds) were
    joined to the 14,000 units by hashing all of them before the page was cut (60 ms at 1M)."""
    ids = list(items.values_list("pk", flat=True)[offset : offset + limit])
    page = Feedback.objects.filter(pk__in=ids).select_related(*SHOWN_PUBLIC)
    return list(page.order_by("-answered_at", "-id"))
