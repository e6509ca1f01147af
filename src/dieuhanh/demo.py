"""Demo users for `dieuhanh init --demo`: one per kind of person the command room serves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import create_user
from dieuhanh.units.services import get_unit

DEMO_PASSWORD = "dieuhanh-demo"  # noqa: S105 - a demo, printed on purpose


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    unit: str
    role: str


# Bến Thành and Sài Gòn are neighbouring wards of Hồ Chí Minh City on the 2025 map.
DEMO_USERS = [
    DemoUser("lanhdao", "Lãnh đạo Chính phủ", "VN-2025:VN", "leader"),
    DemoUser("quantri", "Quản trị hệ thống", "VN-2025:VN", "admin"),
    DemoUser("tphcm", "Cán bộ TP. Hồ Chí Minh", "VN-2025:79", "operator"),
    DemoUser("benthanh", "Cán bộ phường Bến Thành", "VN-2025:26743", "operator"),
    DemoUser("saigon", "Cán bộ phường Sài Gòn", "VN-2025:26740", "operator"),
    DemoUser("truyvet", "Tổ truy vết TP. Hồ Chí Minh", "VN-2025:79", "tracer"),
    DemoUser("truyvet-tw", "Tổ truy vết Trung ương", "VN-2025:VN", "tracer"),
]


def create_demo() -> list[str]:
    """Create the demo users that do not exist yet; return a line per login to print."""
    lines = [f"Đăng nhập tại http://127.0.0.1:8000/login/ — mật khẩu chung: {DEMO_PASSWORD}"]
    for demo in DEMO_USERS:
        unit = get_unit(demo.unit)
        if not User.objects.filter(username=demo.username).exists():
            create_user(
                actor=None,
                username=demo.username,
                password=DEMO_PASSWORD,
                grants=[(unit, demo.role)],
                full_name=demo.full_name,
                validate=False,
                superuser=demo.role == "admin",
            )
        lines.append(f"  {demo.username:<10} {demo.role:<9} {unit.name} ({demo.unit})")
    return lines


DEMO_SOURCE = "nen-tang-demo"


def load_demo_events(folder: Path, *, scale: int = 20_000, days: int = 14, progress=None) -> list[str]:
    """A small national scenario: synthetic venues and events of every kind, through the real pipeline.

    Runs once: a second `init --demo` finds the demo source and leaves its data as it is.
    """
    from dieuhanh.warehouse.ingest import ndjson_records
    from dieuhanh.warehouse.kinds import KINDS
    from dieuhanh.warehouse.models import Source
    from dieuhanh.warehouse.services import create_source, import_venues, ingest
    from dieuhanh.warehouse.synth import generate

    if Source.objects.filter(name=DEMO_SOURCE).exists():
        return [f"Dữ liệu mẫu đã có (nguồn {DEMO_SOURCE}): giữ nguyên."]
    folder.mkdir(parents=True, exist_ok=True)
    focus = {ref.partition(":")[2] for ref in (u.unit for u in DEMO_USERS)}
    generate(folder, scale=scale, days=days, edition="VN-2025", seed=1, progress=progress, focus=focus)
    venues = import_venues(actor=None, path=folder / "venues.csv", edition="VN-2025")
    source, _ = create_source(actor=None, name=DEMO_SOURCE, kinds=list(KINDS), edition="VN-2025")
    lines = [f"Điểm QR: {venues.created}"]
    for kind in KINDS:
        path = folder / f"{kind}.ndjson"
        with path.open("rb") as f:
            summary = ingest(source, kind, ndjson_records(f))
        lines.append(f"{KINDS[kind].label}: {summary.accepted} sự kiện")
    return lines


DEMO_OUTBREAKS, CASES_PER_OUTBREAK, HCMC_CASES = 6, 3, 8


def register_demo_cases() -> list[str]:
    """Positive tests become cases, so that the tracing workspace opens on real chains: Hồ Chí Minh
    City's first ones (for `truyvet`) and the first few of the country's biggest outbreaks (for
    `truyvet-tw`, whose clusters then show). A second run finds them registered and adds none."""
    from django.db.models import Count

    from dieuhanh.warehouse.models import TestResult

    positives = TestResult.objects.filter(result="positive").select_related("source").order_by("at")
    hcmc = get_unit("VN-2025:79")
    added = _promote(
        "truyvet",
        positives.filter(commune__edition_id=hcmc.edition_id, commune__path__under=hcmc.path)[:HCMC_CASES],
    )
    outbreaks = (
        positives.order_by()
        .values("commune")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("commune", flat=True)
    )
    for commune in list(outbreaks[:DEMO_OUTBREAKS]):
        added += _promote("truyvet-tw", positives.filter(commune=commune)[:CASES_PER_OUTBREAK])
    from dieuhanh.tracing.models import Case

    total = Case.objects.count()
    return [f"Ca bệnh để truy vết: {total} (thêm {added}); đăng nhập truyvet hoặc truyvet-tw → Truy vết"]


def _promote(tracer: str, tests) -> int:
    from dieuhanh.tracing.models import Case
    from dieuhanh.tracing.services import CaseInput, TracingError, promote_test

    actor = User.objects.get(username=tracer)
    added = 0
    for test in tests:
        if Case.objects.filter(person_key=test.person_key).exists():
            continue
        try:
            promote_test(
                actor=actor, source=test.source.name, test_event_id=test.source_event_id, data=CaseInput(None)
            )
        except (TracingError, PermissionError):
            continue
        added += 1
    return added
