"""Feedback's verbs: submit (a citizen, no login), accept, answer, forward (a unit's officials).

Every write is one function here, atomic and audited (DESIGN §3). Errors name the field and say why
in Vietnamese: citizens read them as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.feedback.models import (
    Category,
    Event,
    EventKind,
    Feedback,
    FeedbackQuerySet,
    Handler,
    Photo,
    Status,
    Throttle,
)
from dieuhanh.files import content_type
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.units.services import get_unit
from dieuhanh.units.text import fold
from dieuhanh.warehouse import vault
from dieuhanh.warehouse.kinds import unfit_character
from dieuhanh.warehouse.models import IncidentReport
from dieuhanh.warehouse.persons import PersonIdError, normalise, short

HANDLER_ROLES = ("leader", "analyst", "operator", "admin")  # who may see and act on a unit's queue
EDITION = "VN-2025"
MAX_TEXT = 5000
MAX_PHOTOS = 3
MAX_PHOTO_BYTES = 5 * 1024 * 1024
# Photos are recognised by their first bytes, never by their name or declared type.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})
# Per sender, in a fixed window opened by their first report: a household or a café's Wi-Fi may
# share one address, a person rarely has more than a few things to report in a day.
LIMITS = {Throttle.Scope.CLIENT: (10, timedelta(hours=1)), Throttle.Scope.PHONE: (5, timedelta(days=1))}
# Pins farther than this from every commune centre are not in Vietnam (or far out at sea).
MAX_PIN_KM = 40.0
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud over the phone
_LONG_NUMBER = re.compile(r"(?<!\d)(?:\+?\d[\d .-]{6,}\d)(?!\d)")


class FeedbackError(ValueError):
    """A request that cannot be carried out: the field to blame (if one is), why, and the status."""

    def __init__(self, field: str | None, message: str, *, status: int = 422, retry_after: int | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message, self.status, self.retry_after = field, message, status, retry_after


def _fit(field: str, value: str, *, prose: bool = False) -> str:
    bad = unfit_character(value, prose=prose)
    if bad is not None:
        raise FeedbackError(field, f"có ký tự điều khiển không hợp lệ (U+{ord(bad):04X})")
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


_centres: list[tuple[float, float, int]] = []


def _commune_centres() -> list[tuple[float, float, int]]:
    # Kept per process: 3,321 points, read once; a reload of the units is noticed on use (route_pin).
    if not _centres:
        rows = Unit.objects.filter(edition_id=EDITION, kind="commune", lat__isnull=False, lon__isnull=False)
        _centres.extend(rows.values_list("lat", "lon", "id"))
    return _centres


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # Equirectangular: exact enough over tens of kilometres, and cheap over 3,321 centres.
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6371.0 * math.hypot(x, math.radians(lat2 - lat1))


def route_pin(lat: float, lon: float) -> Unit:
    """The 2025 commune whose centre is nearest the pin (no commune shapes are packaged)."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FeedbackError("lat", "tọa độ không hợp lệ (vĩ độ từ -90 đến 90, kinh độ từ -180 đến 180)")
    for _ in range(2):
        centres = _commune_centres()
        if not centres:
            break
        dist, unit_id = min((_km(lat, lon, c_lat, c_lon), pk) for c_lat, c_lon, pk in centres)
        if dist > MAX_PIN_KM:
            raise FeedbackError("lat", "vị trí đã chọn nằm ngoài lãnh thổ Việt Nam")
        unit = Unit.objects.select_related("parent").filter(pk=unit_id).first()
        if unit is not None:
            return unit
        _centres.clear()  # the units were reloaded under new ids: read them again
    raise FeedbackError("lat", "chưa có dữ liệu đơn vị hành chính để xác định vị trí", status=503)


def route_address(address: str) -> Unit:
    """The 2025 commune an address names, in the new form or the pre-2025 one (then carried over)."""
    from vietnamadminunits import parse_address  # its import loads the whole parser: only when needed

    old = parse_address(address, mode="LEGACY", level=3)
    # An old address names its district; one that parses in full is old, whatever else matches.
    old_code = old.ward_code or (old.district_code if old.district_code and not old.ward_key else None)
    if old_code and old.district_code:
        found = _successor(str(old_code))
        if found is not None:
            return found
    new = parse_address(address, mode="FROM_2025", level=2)
    if new.province_code and new.ward:
        # The package numbers some communes differently from the official list: match by name.
        unit = (
            Unit.objects.select_related("parent")
            .filter(
                edition_id=EDITION,
                kind="commune",
                parent__code=f"{int(new.province_code):02d}",
                search_name=fold(new.ward),
            )
            .first()
        )
        if unit is not None:
            return unit
    if new.province_code or old.province_code:
        raise FeedbackError(
            "address", "không xác định được xã, phường: hãy ghi rõ tên xã, phường và tỉnh, thành phố"
        )
    raise FeedbackError("address", "không tìm thấy địa chỉ này trong các đơn vị hành chính của Việt Nam")


def _successor(old_code: str) -> Unit | None:
    """The 2025 commune that took the largest share of a pre-2025 commune (or island district)."""
    old = Unit.objects.filter(edition_id="VN-2021", code=old_code, children__isnull=True).first()
    if old is None:
        return None
    best = old.successions.select_related("new", "new__parent").order_by("-weight", "new__code").first()
    return best.new if best is not None else None


def route(place: Place) -> Unit:
    if place.lat is not None or place.lon is not None:
        if place.lat is None or place.lon is None:
            raise FeedbackError("lon" if place.lon is None else "lat", "cần cả vĩ độ (lat) và kinh độ (lon)")
        if place.address.strip():
            raise FeedbackError("address", "chỉ gửi một trong hai: vị trí trên bản đồ hoặc địa chỉ")
        return route_pin(place.lat, place.lon)
    if place.address.strip():
        return route_address(place.address.strip())
    raise FeedbackError("address", "cần vị trí trên bản đồ (lat, lon) hoặc địa chỉ")


def handling_unit(category: Category, commune: Unit) -> Unit:
    if category.handler == Handler.PROVINCE and commune.parent is not None:
        return commune.parent
    return commune


# Intake


@dataclass(frozen=True)
class Upload:
    name: str
    content: bytes


def _category(code: str) -> Category:
    found = Category.objects.filter(code=code, active=True).first()
    if found is None:
        raise FeedbackError(
            "category", f"không có lĩnh vực '{code[:40]}'; xem GET /api/v1/feedback/categories"
        )
    return found


def _photos(photos: Sequence[Upload]) -> list[tuple[str, bytes]]:
    if len(photos) > MAX_PHOTOS:
        raise FeedbackError("photos", f"tối đa {MAX_PHOTOS} ảnh, đã gửi {len(photos)}")
    typed = []
    for i, photo in enumerate(photos):
        if len(photo.content) > MAX_PHOTO_BYTES:
            raise FeedbackError(
                f"photos[{i}]", f"ảnh quá lớn: tối đa {MAX_PHOTO_BYTES // (1024 * 1024)} MB", status=413
            )
        kind = content_type(photo.content)
        if kind not in PHOTO_TYPES:
            raise FeedbackError(f"photos[{i}]", "chỉ nhận ảnh JPEG hoặc PNG", status=415)
        typed.append((kind, photo.content))
    return typed


def _phone(raw: str) -> str | None:
    if not raw.strip():
        return None
    try:
        number = normalise(raw)
    except PersonIdError:
        number = ""
    if not number.startswith("+84"):
        raise FeedbackError("phone", "không phải số điện thoại di động Việt Nam (ví dụ 0912 345 678)")
    return number


def _throttle_key(scope: str, value: str) -> str:
    # A keyed hash: the table never holds an address or a number, and cannot be reversed by trying all.
    return hmac.new(settings.PSEUDONYM_KEY, f"feedback:{scope}:{value}".encode(), hashlib.sha256).hexdigest()


def _count(scope: Throttle.Scope, value: str, now: datetime) -> None:
    """Counts one report against the sender, or refuses it (429) when their window is full."""
    limit, window = LIMITS[scope]
    row, _ = Throttle.objects.select_for_update().get_or_create(
        scope=scope, key=_throttle_key(scope, value), defaults={"window_start": now}
    )
    if now - row.window_start >= window:
        row.window_start, row.count = now, 0
    if row.count >= limit:
        wait = row.window_start + window - now
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        field = "phone" if scope == Throttle.Scope.PHONE else None
        raise FeedbackError(
            field,
            f"đã gửi {row.count} phản ánh từ {scope.label} này trong {_window_text(window)}, mức tối đa là"
            f" {limit}; vui lòng gửi lại sau {minutes} phút",
            status=429,
            retry_after=math.ceil(wait.total_seconds()),
        )
    row.count += 1
    row.save()


def _window_text(window: timedelta) -> str:
    return "24 giờ" if window >= timedelta(days=1) else f"{int(window.total_seconds() // 3600)} giờ"


def _new_code() -> str:
    while True:
        code = "PA" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
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
) -> Feedback:
    """A citizen's report: checked whole first, then routed, counted and stored in one transaction."""
    cat = _category(_fit("category", category))
    text = _fit("text", text, prose=True).strip()
    if not text:
        raise FeedbackError("text", "cần nội dung phản ánh")
    if len(text) > MAX_TEXT:
        raise FeedbackError("text", f"nội dung dài {len(text)} ký tự; tối đa {MAX_TEXT}")
    number = _phone(_fit("phone", phone))
    _fit("address", place.address)
    typed = _photos(photos)
    commune = route(place)
    unit = handling_unit(cat, commune)
    now = timezone.now()
    with transaction.atomic():
        # Seen from one window on: the rows of senders whose window is over hold nothing.
        longest = max(w for _, w in LIMITS.values())
        Throttle.objects.filter(window_start__lt=now - longest).delete()
        if client:
            _count(Throttle.Scope.CLIENT, client, now)
        phone_key = None
        if number:
            _count(Throttle.Scope.PHONE, number, now)
            phone_key, sealed = vault.seal(number)
            vault.store([(phone_key, sealed)])
        item = Feedback.objects.create(
            code=_new_code(),
            category=cat,
            text=text,
            unit=unit,
            place_unit=commune,
            lat=place.lat,
            lon=place.lon,
            address=place.address.strip()[:300],
            phone_key=phone_key,
            received_at=now,
            assigned_at=now,
            forward_due=now + timedelta(minutes=cat.forward_minutes),
            answer_due=now + timedelta(days=cat.answer_days),
        )
        Event.objects.create(feedback=item, kind=EventKind.RECEIVED, at=now, unit=unit)
        for kind, content in typed:
            digest = hashlib.sha256(content).hexdigest()
            photo = Photo(feedback=item, content_type=kind, size=len(content), sha256=digest)
            photo.file.save(digest, ContentFile(content), save=False)
            photo.save()
        audit(
            None,
            "feedback.submit",
            item.code,
            unit=unit.ref,
            category=cat.code,
            photos=len(typed),
            phone=short(phone_key) if phone_key else None,
        )
    return item


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
        items = Feedback.objects.select_related("category", "unit", "place_unit")
        found = items.filter(code=code.upper()).first()
    if found is None:
        raise FeedbackError("code", f"không có phản ánh mã '{code[:20]}'", status=404)
    return found


def rate(*, code: str, stars: int) -> Feedback:
    """The citizen's mark on the answer (1 to 5), once: whoever holds the tracking code is the citizen."""
    if not 1 <= stars <= 5:
        raise FeedbackError("stars", "đánh giá từ 1 đến 5 sao")
    with transaction.atomic():
        item = track(code)
        item = (
            Feedback.objects.select_for_update()
            .select_related("category", "unit", "place_unit")
            .get(pk=item.pk)
        )
        if item.status != Status.ANSWERED:
            raise FeedbackError("stars", "chỉ đánh giá được sau khi phản ánh đã được trả lời", status=409)
        if item.rating is not None:
            raise FeedbackError("stars", "phản ánh này đã được đánh giá", status=409)
        item.rating, item.rated_at = stars, timezone.now()
        item.save(update_fields=["rating", "rated_at"])
        audit(None, "feedback.rate", item.code, unit=item.unit.ref, stars=stars)
    return item


def public_text(text: str) -> str:
    """The text as the public page shows it: long runs of digits (phone, ID numbers) masked."""
    return _LONG_NUMBER.sub("***", text)


# A unit's queue and its verbs


def handling_area(user: User) -> Area:
    areas = [user.area(role=role) for role in HANDLER_ROLES]
    return Area(any(a.everything for a in areas), frozenset().union(*(a.prefixes for a in areas)))


def _not_yours(ref: str) -> FeedbackError:
    # Outside the caller's area and not existing answer alike: nothing is told about other areas.
    return FeedbackError("unit", f"không có đơn vị '{ref[:40]}' trong phạm vi của bạn", status=404)


def queue_unit(user: User, ref: str) -> Unit:
    if not _found(ref):
        raise _not_yours(ref)
    try:
        return get_unit(ref, within=Unit.objects.within(handling_area(user)))
    except (Unit.DoesNotExist, ValueError):
        raise _not_yours(ref) from None


def overdue_q(now: datetime) -> Q:
    return Q(status=Status.RECEIVED, forward_due__lt=now) | Q(
        status__in=[Status.RECEIVED, Status.ACCEPTED], answer_due__lt=now
    )


def is_overdue(item: Feedback, now: datetime) -> bool:
    """overdue_q for an item in hand."""
    open_ = item.status in (Status.RECEIVED, Status.ACCEPTED)
    return (item.status == Status.RECEIVED and item.forward_due < now) or (open_ and item.answer_due < now)


def queue(user: User, ref: str, *, overdue: bool = False, status: str | None = None) -> FeedbackQuerySet:
    """The items handled by the unit and those below it, oldest deadline first."""
    unit = queue_unit(user, ref)
    items = Feedback.objects.filter(unit__edition_id=unit.edition_id, unit__path__under=unit.path)
    if status:
        items = items.filter(status=status)
    if overdue:
        items = items.filter(overdue_q(timezone.now()))
    return items.select_related("category", "unit", "place_unit").order_by("answer_due", "id")


def item_for(user: User, code: str) -> Feedback:
    if not _found(code):
        raise FeedbackError("code", "không có phản ánh mã này trong phạm vi của bạn", status=404)
    found: Feedback | None = (
        Feedback.objects.within(handling_area(user))
        .select_related("category", "unit", "place_unit")
        .filter(code=code.upper())
        .first()
    )
    if found is None:
        raise FeedbackError("code", f"không có phản ánh mã '{code[:20]}' trong phạm vi của bạn", status=404)
    return found


def photo_of(item: Feedback, number: int) -> Photo:
    """The item's photo by its place in the report (1 to 3), in the order it was sent."""
    found = None
    if 1 <= number <= MAX_PHOTOS:  # bounded before it becomes an OFFSET
        found = next(iter(item.photos.order_by("id")[number - 1 : number]), None)
    if found is None:
        raise FeedbackError("number", f"phản ánh {item.code} không có ảnh số {number}", status=404)
    return found


def _locked(actor: User, item: Feedback) -> Feedback:
    """The item, locked, if the actor may act on it where it is now (a forward may have moved it)."""
    found = Feedback.objects.select_for_update().select_related("category", "unit").get(pk=item.pk)
    if not handling_area(actor).contains(found.unit):
        raise FeedbackError("code", "không có phản ánh mã này trong phạm vi của bạn", status=404)
    return found


def accept(*, actor: User, item: Feedback) -> Feedback:
    """The unit takes the item as its own: it is no longer waiting to be passed on."""
    with transaction.atomic():
        item = _locked(actor, item)
        if item.status != Status.RECEIVED:
            raise FeedbackError(
                "status", f"phản ánh đang ở trạng thái '{item.get_status_display()}'", status=409
            )
        now = timezone.now()
        item.status = Status.ACCEPTED
        item.save(update_fields=["status"])
        Event.objects.create(feedback=item, kind=EventKind.ACCEPTED, at=now, unit=item.unit, actor=actor)
        audit(actor, "feedback.accept", item.code, unit=item.unit.ref)
    return item


def answer(*, actor: User, item: Feedback, text: str) -> Feedback:
    """The public answer: the citizen and everyone reading the public page see it."""
    text = _fit("text", text, prose=True).strip()
    if not text:
        raise FeedbackError("text", "cần nội dung trả lời")
    if len(text) > MAX_TEXT:
        raise FeedbackError("text", f"nội dung dài {len(text)} ký tự; tối đa {MAX_TEXT}")
    with transaction.atomic():
        item = _locked(actor, item)
        if item.status == Status.ANSWERED:
            raise FeedbackError("status", "phản ánh đã được trả lời", status=409)
        now = timezone.now()
        item.status, item.answer, item.answered_at = Status.ANSWERED, text, now
        item.save(update_fields=["status", "answer", "answered_at"])
        Event.objects.create(
            feedback=item, kind=EventKind.ANSWERED, at=now, unit=item.unit, actor=actor, note=text
        )
        audit(actor, "feedback.answer", item.code, unit=item.unit.ref, late=now > item.answer_due)
    return item


def forward(*, actor: User, item: Feedback, to: str, reason: str) -> Feedback:
    """Pass the item to the unit it belongs to, saying why. Naming that unit is required: a bare
    "not ours" leaves the citizen nowhere. The answer deadline keeps running from receipt."""
    reason = _fit("reason", reason, prose=True).strip()
    _fit("to", to)
    if len(reason) < 10:
        raise FeedbackError("reason", "cần nêu lý do chuyển (ít nhất 10 ký tự)")
    try:
        target = Unit.objects.ref(to if ":" in to else f"{EDITION}:{to}")
    except (Unit.DoesNotExist, ValueError):
        raise FeedbackError(
            "to", f"không có đơn vị '{to[:40]}': cần mã đơn vị nhận, ví dụ VN-2025:26740"
        ) from None
    if target.edition_id != EDITION or target.kind not in ("commune", "province", "agency"):
        raise FeedbackError(
            "to", "đơn vị nhận phải là xã, phường, tỉnh, thành phố hoặc cơ quan trên bản đồ 2025"
        )
    with transaction.atomic():
        item = _locked(actor, item)
        if item.status == Status.ANSWERED:
            raise FeedbackError("status", "phản ánh đã được trả lời, không chuyển được", status=409)
        if target.pk == item.unit_id:
            raise FeedbackError("to", "phản ánh đang ở chính đơn vị này")
        now = timezone.now()
        was = item.unit
        item.unit, item.status, item.assigned_at = target, Status.RECEIVED, now
        item.forward_due = now + timedelta(minutes=item.category.forward_minutes)
        item.save(update_fields=["unit", "status", "assigned_at", "forward_due"])
        Event.objects.create(
            feedback=item, kind=EventKind.FORWARDED, at=now, unit=target, actor=actor, note=reason
        )
        audit(actor, "feedback.forward", item.code, frm=was.ref, to=target.ref, reason=reason)
    return item


# The public page


def answered(query: str = "", category: str = "") -> FeedbackQuerySet:
    items = Feedback.objects.filter(status=Status.ANSWERED)
    if not (_found(query) and _found(category)):
        return items.none()
    if category:
        items = items.filter(category_id=category)
    if query.strip():
        q = query.strip()
        items = items.filter(
            Q(text__icontains=q) | Q(answer__icontains=q) | Q(place_unit__search_name__contains=fold(q))
        )
    return items.select_related("category", "place_unit", "unit").order_by("-answered_at", "-id")
