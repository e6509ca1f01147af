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

    Runs once: a second `init --demo` finds the demo source and leaves its data as it is. The generated
    files hold raw citizen IDs and phone numbers (the sources' side of the pipeline), so they are removed
    once read, also when the ingest fails and by a later run that finds them left over.
    """
    from dieuhanh.warehouse.ingest import ndjson_records
    from dieuhanh.warehouse.kinds import KINDS
    from dieuhanh.warehouse.models import Source
    from dieuhanh.warehouse.services import create_source, import_venues, ingest
    from dieuhanh.warehouse.synth import generate

    if Source.objects.filter(name=DEMO_SOURCE).exists():
        _remove_generated(folder)
        return [f"Dữ liệu mẫu đã có (nguồn {DEMO_SOURCE}): giữ nguyên."]
    folder.mkdir(parents=True, exist_ok=True)
    focus = {ref.partition(":")[2] for ref in (u.unit for u in DEMO_USERS)}
    try:
        generate(folder, scale=scale, days=days, edition="VN-2025", seed=1, progress=progress, focus=focus)
        venues = import_venues(actor=None, path=folder / "venues.csv", edition="VN-2025")
        source, _ = create_source(actor=None, name=DEMO_SOURCE, kinds=list(KINDS), edition="VN-2025")
        lines = [f"Điểm QR: {venues.created}"]
        for kind in KINDS:
            path = folder / f"{kind}.ndjson"
            with path.open("rb") as f:
                summary = ingest(source, kind, ndjson_records(f))
            lines.append(f"{KINDS[kind].label}: {summary.accepted} sự kiện")
    finally:
        _remove_generated(folder)
    return lines


def load_demo_enterprises() -> list[str]:
    """An industrial park of Bình Dương, on the 2025 map in Hồ Chí Minh City, with four factories, their
    rosters, gates and workers' events, and its users (issue 21; warehouse.enterprises.demo)."""
    from dieuhanh.warehouse.enterprises.demo import load_demo_enterprises as load

    return load(source_name=DEMO_SOURCE, password=DEMO_PASSWORD)


def _remove_generated(folder: Path) -> None:
    """The files `synth.generate` writes, and the folder if nothing else is in it."""
    from dieuhanh.warehouse.synth import EVENT_KINDS

    for name in ["venues.csv", *(f"{kind}.ndjson" for kind in EVENT_KINDS)]:
        (folder / name).unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


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


# The southern provinces on the 2025 map: the seeds' "2.500 xã, phường tại các địa phương phía Nam"
# (then on the 2021 map) are today's communes of these provinces.
SOUTH_2025 = ["75", "79", "80", "82", "86", "91", "92", "96"]


def create_demo_directives() -> list[str]:
    """A few directives from the national leader, some already acknowledged and answered, so that the
    inbox and the status pages open on something. Runs once."""
    from datetime import timedelta

    from django.utils import timezone

    from dieuhanh.directives import services
    from dieuhanh.directives.models import Delivery, Directive, Priority, UnitGroup

    if Directive.objects.filter(number__startswith="DEMO-").exists():
        return ["Chỉ đạo mẫu đã có: giữ nguyên."]
    leader = User.objects.get(username="lanhdao")
    # Through the verb, as a leader saves a group: checked against the area, audited.
    group = UnitGroup.objects.filter(code="xa-phuong-phia-nam").first() or services.create_group(
        actor=leader,
        code="xa-phuong-phia-nam",
        name="Xã, phường các tỉnh, thành phố phía Nam",
        targets=services.Targets(units=tuple(f"VN-2025:{code}" for code in SOUTH_2025), level="commune"),
    )
    now = timezone.now()
    samples = [{"key": "samples", "label": "Số mẫu xét nghiệm đã lấy", "type": "number"}]
    specs = [
        (
            "DEMO-01/CĐ-TTg",
            "Tăng cường xét nghiệm tại các khu vực nguy cơ cao",
            Priority.URGENT,
            services.Targets(units=("VN-2025:79",), level="commune"),
            samples,
            2,
        ),
        (
            "DEMO-02/CĐ-TTg",
            "Rà soát người về từ vùng dịch",
            Priority.NORMAL,
            services.Targets(group=group.code),
            [],
            5,
        ),
        (
            "DEMO-03/TB-VPCP",
            "Thông báo kết luận cuộc họp trực tuyến với các tỉnh",
            Priority.NORMAL,
            services.Targets(units=("VN-2025:VN",), level="province"),
            [],
            7,
        ),
    ]
    for number, title, priority, targets, form, days in specs:
        directive = services.issue_directive(
            actor=leader,
            data=services.DirectiveInput(
                number=number,
                title=title,
                body=f"{title}. Các đơn vị xác nhận đã nhận và báo cáo kết quả đúng hạn.",
                targets=targets,
                priority=priority,
                kind="report_request" if form else "directive",
                form=form,
                deadline=now + timedelta(days=days),
            ),
        )
        _demo_answers(directive, Delivery)
    return [f"Chỉ đạo mẫu: {Directive.objects.count()}; đăng nhập benthanh → Hộp thư chỉ đạo"]


def load_demo_task_list() -> list[str]:
    """Section IV of the seeds' half-year report, as tasks of the nation (runs once)."""
    from dieuhanh.directives.assignments import load_demo_tasks

    return load_demo_tasks(actor=User.objects.get(username="lanhdao"))


def load_demo_reports_of_citizens() -> list[str]:
    """Citizens' reports in Hồ Chí Minh City and Hà Nội, answered, forwarded and overdue (runs once)."""
    from dieuhanh.feedback.demo import load_demo_feedback

    return load_demo_feedback()


def _demo_answers(directive, delivery_model) -> None:
    """Every third commune of Hồ Chí Minh City has acknowledged, every sixth has answered (not Bến
    Thành and Sài Gòn: the demo users do that themselves)."""
    from dieuhanh.directives import services

    keep = {"26743", "26740"}
    deliveries = delivery_model.objects.filter(
        directive=directive, unit__edition_id="VN-2025", unit__path__under="/VN/79/"
    ).select_related("unit")
    for i, delivery in enumerate(deliveries.order_by("unit__code")):
        if delivery.unit.code in keep or i % 3:
            continue
        operator = _demo_operator(delivery.unit)
        services.acknowledge_delivery(actor=operator, delivery=delivery)
        if i % 6 == 0 and directive.form:
            services.respond_delivery(
                actor=operator, delivery=delivery, text="Đã triển khai", figures={"samples": 100 + i}
            )


def _demo_operator(unit):
    """The commune's demo official, made once through the accounts verb (audited, no password)."""
    username = f"canbo-{unit.code}"
    return User.objects.filter(username=username).first() or create_user(
        actor=None,
        username=username,
        password=None,
        grants=[(unit, "operator")],
        full_name=f"Cán bộ {unit.name}",
        validate=False,
    )


def load_demo_indicators() -> list[str]:
    """The ICT catalogue with the seeds' figures, and a commune report of Hồ Chí Minh City kept on the
    pre-2025 map (Jan 2020 – Aug 2021), which the 2025 map's pages show carried through the succession."""
    from dieuhanh.indicators.catalog import load
    from dieuhanh.indicators.datavalues import import_values
    from dieuhanh.indicators.services import save_data_element, save_data_set
    from dieuhanh.units.models import Unit
    from dieuhanh.units.scoping import Area

    catalog = load("ict", actor=None, with_seed_values=True)
    save_data_element(
        actor=None,
        code="online_dossiers",
        name="Hồ sơ thủ tục hành chính nộp trực tuyến",
        name_en="Administrative dossiers filed online",
        unit="hồ sơ",
        aggregation="sum",
        period_type="monthly",
    )
    save_data_set(
        actor=None,
        code="bao_cao_xa",
        name="Báo cáo dịch vụ công trực tuyến cấp xã",
        elements=["online_dossiers"],
        period_type="monthly",
        unit_kind="commune",
        due_day=5,
    )
    communes = Unit.objects.filter(edition_id="VN-2021", path__under="/VN/79/").leaves().order_by("code")
    months = [f"{y}{m:02d}" for y in (2020, 2021) for m in range(1, 13) if (y, m) <= (2021, 8)]
    records = [
        {
            "dataElement": "online_dossiers",
            "period": month,
            "orgUnit": unit.ref,
            "value": 40 + (int(unit.code) * 7 + int(month)) % 90 + (25 if month >= "2021" else 0),
        }
        for unit in communes
        for month in months
    ]
    summary = import_values(records, actor=None, area=Area(True, frozenset()))
    return [
        f"Chỉ tiêu ngành TT&TT: {sum(catalog.counts.values())} mục danh mục, số liệu các báo cáo mẫu",
        f"Báo cáo cấp xã TP.HCM (bản đồ cũ): mới {summary.imported}, không đổi {summary.ignored}",
        *load_demo_approval(),
        *load_demo_quality(),
    ]


def load_demo_quality() -> list[str]:
    """Data quality (issue 19): a commune data set of online public services on the 2025 map for Hồ Chí
    Minh City's wards (2023–2024, as imported from the wards' own systems), two validation rules, a run
    that finds the violations (a few wards whose online dossiers exceed those received, a few with no
    one-stop staff), one of them handed to Bến Thành as a task, and an outlier (a typo) in Sài Gòn."""
    from datetime import date

    from dieuhanh.directives.quality_assignments import task_from_violation
    from dieuhanh.indicators.datavalues import import_values
    from dieuhanh.indicators.periods import parse
    from dieuhanh.indicators.quality import rules
    from dieuhanh.indicators.quality.models import ValidationRule, Violation
    from dieuhanh.indicators.services import save_data_element, save_data_set
    from dieuhanh.units.models import Unit
    from dieuhanh.units.scoping import Area

    if ValidationRule.objects.filter(code="online_within_received").exists():
        return ["Kiểm tra số liệu: đã có (giữ nguyên)"]
    for code, name, unit in [
        ("dossiers_received", "Hồ sơ thủ tục hành chính tiếp nhận", "hồ sơ"),
        ("dossiers_online", "Hồ sơ thủ tục hành chính nộp trực tuyến (trong số tiếp nhận)", "hồ sơ"),
        ("onestop_staff", "Cán bộ bộ phận một cửa", "người"),
    ]:
        save_data_element(actor=None, code=code, name=name, unit=unit, value_type="integer")
    save_data_set(
        actor=None,
        code="dvc_xa",
        name="Dịch vụ công cấp xã (bản đồ 2025)",
        elements=["dossiers_received", "dossiers_online", "onestop_staff"],
        period_type="monthly",
        unit_kind="commune",
        due_day=5,
    )
    wards = list(
        Unit.objects.filter(edition_id="VN-2025", path__under="/VN/79/", kind="commune").order_by("code")
    )
    months = [f"{y}{m:02d}" for y in (2023, 2024) for m in range(1, 13)]
    records = []
    for n, ward in enumerate(wards):
        for k, month in enumerate(months):
            received = 120 + (int(ward.code) * 13 + k * 7) % 80 + (40 if month.endswith("12") else 0)
            online = received * (55 + (int(ward.code) + k) % 30) // 100
            if month == "202411" and n % 37 == 5:
                online = received + 15  # more filed online than received: a mistake to find
            staff = 0 if month == "202412" and n % 41 == 3 else 2 + n % 3
            if ward.code == "26740" and month == "202410":
                received = received * 10  # a typo: the outlier of the unit page and the entry form
            records += [
                {"dataElement": "dossiers_received", "period": month, "orgUnit": ward.ref, "value": received},
                {"dataElement": "dossiers_online", "period": month, "orgUnit": ward.ref, "value": online},
                {"dataElement": "onestop_staff", "period": month, "orgUnit": ward.ref, "value": staff},
            ]
    import_values(records, actor=None, area=Area(True, frozenset()))
    made = [
        rules.save_rule(
            actor=None,
            code="online_within_received",
            name="Hồ sơ trực tuyến không vượt hồ sơ tiếp nhận",
            instruction="Kiểm tra lại số hồ sơ tiếp nhận và số hồ sơ nộp trực tuyến của tháng.",
            left="#{dossiers_online}",
            operator="<=",
            right="#{dossiers_received}",
            importance="high",
            strictness="refuse",
            data_set="dvc_xa",
            levels=[2],
        ),
        rules.save_rule(
            actor=None,
            code="onestop_staff_present",
            name="Bộ phận một cửa có cán bộ",
            left="#{onestop_staff}",
            operator=">",
            right="0",
            importance="medium",
            strictness="warn",
            data_set="dvc_xa",
            levels=[2],
        ),
    ]
    result = rules.run(made, [parse(m) for m in months[12:]], wards)
    violation = Violation.objects.filter(rule__code="online_within_received").order_by("unit__code").first()
    leader = User.objects.filter(username="lanhdao").first()
    if violation is not None and leader is not None:
        task_from_violation(actor=leader, violation=violation, due=date(2025, 1, 15))
    return [
        f"Kiểm tra số liệu (dvc_xa, {len(wards)} phường, xã TP.HCM, 2023–2024): {len(made)} quy tắc,"
        f" {len(result.findings)} vi phạm năm 2024, 1 vi phạm giao thành nhiệm vụ;"
        " số bất thường ở Phường Sài Gòn tháng 10/2024"
    ]


def load_demo_approval() -> list[str]:
    """Approval on for the communes' report (issue 19), and Hồ Chí Minh City half approved for 8/2021
    on the pre-2025 map: every commune of half its districts approved and accepted, those districts
    approved; the other half still open (the room's map layer "Trạng thái phê duyệt" shows it)."""
    from dieuhanh.indicators.approval import services as approval
    from dieuhanh.indicators.approval.models import Approval
    from dieuhanh.indicators.models import DataSet
    from dieuhanh.units.models import Unit

    data_set = DataSet.objects.get(code="bao_cao_xa")
    approval.configure(actor=None, data_set=data_set)
    if Approval.objects.filter(data_set=data_set, period="202108").exists():
        return ["Phê duyệt: TP.HCM tháng 8/2021 đã có (giữ nguyên)"]
    admin = User.objects.get(username="quantri")
    districts = list(
        Unit.objects.filter(edition_id="VN-2021", parent__code="79", parent__level=1).order_by("code")
    )
    half = districts[: len(districts) // 2]
    communes = list(Unit.objects.filter(parent__in=half).order_by("code"))
    # The same on today's map, which the room opens on: half the city's wards and communes approved,
    # a quarter of them already accepted by the city.
    wards = list(
        Unit.objects.filter(edition_id="VN-2025", parent__code="79", parent__level=1).order_by("code")
    )
    approved_2025 = wards[: len(wards) // 2]
    for action, units in (
        ("approve", communes),
        ("accept", communes),
        ("approve", half),
        ("approve", approved_2025),
        ("accept", approved_2025[: len(approved_2025) // 2]),
    ):
        approval.act(actor=admin, action=action, data_set=data_set, period="202108", units=units)
    return [
        f"Phê duyệt tháng 8/2021, TP.HCM (bản đồ cũ): {len(half)}/{len(districts)} quận, huyện đã phê duyệt"
        f" ({len(communes)} xã, phường)",
        f"Phê duyệt tháng 8/2021, TP.HCM (bản đồ mới): {len(approved_2025)}/{len(wards)}"
        " xã, phường đã phê duyệt",
    ]


def load_demo_reports() -> list[str]:
    """The shipped report definitions owned by lanhdao, a monthly report of Hồ Chí Minh City's communes
    for tphcm, and the national monthly report for August 2021 in the archive (DOCX and PDF)."""
    from dieuhanh.accounts.models import User
    from dieuhanh.reports import services
    from dieuhanh.reports.models import Report
    from dieuhanh.units.models import Unit

    leader = User.objects.get(username="lanhdao")
    shipped = services.load_shipped(owner=leader)
    services.save_definition(
        actor=None,
        code="hcm_communes_monthly",
        name="Dịch vụ công trực tuyến cấp xã TP. Hồ Chí Minh hằng tháng",
        period_type="monthly",
        unit=Unit.objects.ref("VN-2025:79"),
        owner=User.objects.get(username="tphcm"),
        body=_HCM_REPORT,
    )
    made = []
    for fmt in ("docx", "pdf"):
        done = Report.objects.filter(state="done", format=fmt)
        kept = done.filter(definition__code="ict_monthly", period="202108")
        if kept.exists():  # a second `init --demo` does not fill the archive with copies
            made.append(kept.earliest("created_at"))
            continue
        request = services.prepare(
            actor=leader, definition="ict_monthly", period="202108", unit=None, fmt=fmt
        )
        made.append(services.generate(actor=leader, request=request))
    return [
        f"Báo cáo định kỳ: {len(shipped) + 1} mẫu; báo cáo tháng 8/2021 đã lập: "
        + ", ".join(str(services.file_path(r)) for r in made)
    ]


_HCM_REPORT = {
    "issuing_body": "Ủy ban nhân dân Thành phố Hồ Chí Minh",
    "governing_body": "",
    "document_code": "BC-UBND",
    "place": "Thành phố Hồ Chí Minh",
    "subject": "Tình hình tiếp nhận hồ sơ trực tuyến cấp xã {{ period_label() }}",
    "sections": [
        {
            "title": "Kết quả chung",
            "blocks": [
                {
                    "text": "Trong {{ period_label() }}, các xã, phường trên địa bàn {{ unit_name }} "
                    "tiếp nhận {{ value('online_dossiers', scale='') }} nộp trực tuyến "
                    "({{ change('online_dossiers') }}); lũy kế {{ period_label('ytd') }}: "
                    "{{ value('online_dossiers', 'ytd', scale='') }}."
                }
            ],
        },
        {
            "title": "Chi tiết theo xã, phường",
            "blocks": [{"table": {"indicators": ["online_dossiers"], "rows": "children"}}],
        },
        {"title": "Tình hình thực hiện nhiệm vụ", "blocks": [{"tasks": {}}]},
    ],
    "recipients": ["Văn phòng Chính phủ (để b/c);", "Bộ Thông tin và Truyền thông;", "Lưu: VT."],
    "signer_title": "Chủ tịch",
}
