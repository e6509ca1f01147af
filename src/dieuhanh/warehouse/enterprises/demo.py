"""The demo's industrial park (dieuhanh init --demo): a park of Bình Dương, registered on the 2021 map
as its factories knew it, carried by the map change into Thành phố Hồ Chí Minh; four factories, their
rosters, gates, and their workers' tests, vaccinations, quarantine and gate check-ins in July 2025 (the
demo's window), all through the real verbs and the real ingest pipeline."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from dieuhanh.accounts.models import User
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.vnformat import VN_TZ
from dieuhanh.warehouse.enterprises.models import Profile
from dieuhanh.warehouse.enterprises.services import (
    EnterpriseInput,
    WorkerInput,
    create_enterprise,
    follow_succession,
    import_roster,
    link_venue,
)
from dieuhanh.warehouse.services import VenueInput, ingest, save_venue

EVERYWHERE = Area(True, frozenset())
OLD_COMMUNE = "VN-2021:25987"  # Phường Bình Hòa, Thuận An, Bình Dương (2021) → Phường Bình Hòa, TP.HCM (2025)
PARK = ("0399000001", "Khu công nghiệp Việt Nam – Singapore (mẫu)", "Đại lộ Hữu Nghị, Bình Hòa, Thuận An")
FACTORIES = [  # tax code, name, workers, share of workers testing positive, share with two doses
    ("0399000011", "Công ty May mặc Phú Thịnh (mẫu)", 320, 0.08, 0.55),
    ("0399000012", "Công ty Điện tử Sao Việt (mẫu)", 260, 0.02, 0.92),
    ("0399000013", "Công ty Giày da Thuận An (mẫu)", 280, 0.05, 0.74),
    ("0399000014", "Công ty Thực phẩm Bình Dương (mẫu)", 140, 0.0, 0.97),
]
START = date(2025, 7, 1)  # the demo's events start there (warehouse.synth's VN-2025 window)
DAYS = 14
HOMES = ["25987", "25975", "25942", "25945", "26743", "26740"]  # where workers live and are tested
USERS = [  # (username, full name, tax code of their unit)
    ("kcn-vsip", "Ban quản lý KCN Việt Nam – Singapore", PARK[0]),
    ("nhamay", "An toàn lao động Công ty May mặc Phú Thịnh", FACTORIES[0][0]),
]


def load_demo_enterprises(*, source_name: str, password: str) -> list[str]:
    """Create the park once (a second run leaves it); the lines to print, logins included."""
    from dieuhanh.accounts.services import create_user
    from dieuhanh.warehouse.models import Source

    if Profile.objects.filter(tax_code=PARK[0]).exists():
        return ["Khu công nghiệp mẫu đã có: giữ nguyên.", *_logins()]
    source = Source.objects.filter(name=source_name).first()
    if source is None:
        return ["Khu công nghiệp mẫu: cần dữ liệu mẫu (nguồn chưa có)."]
    park = create_enterprise(
        actor=None,
        data=EnterpriseInput("industrial_park", PARK[0], PARK[1], PARK[2], commune=OLD_COMMUNE),
        area=EVERYWHERE,
    )
    factories = [
        create_enterprise(
            actor=None,
            data=EnterpriseInput(
                "enterprise", tax, name, f"Lô {n}, {PARK[1]}", commune=OLD_COMMUNE, park=park.ref
            ),
            area=EVERYWHERE,
        )
        for n, (tax, name, *_rest) in enumerate(FACTORIES, start=1)
    ]
    moved = follow_succession(actor=None)  # the 2025 map: Bình Dương is now part of Hồ Chí Minh City
    park.refresh_from_db()
    rng = random.Random(21)
    records: dict[str, list[dict]] = {"checkin": [], "test": [], "vaccination": [], "quarantine": []}
    for n, (unit, (tax, _name, size, positive, covered)) in enumerate(zip(factories, FACTORIES, strict=True)):
        unit.refresh_from_db()
        gate = save_venue(
            actor=None,
            venue=VenueInput(
                f"G-{tax}", f"Cổng chính {unit.name}", "factory", "VN-2025:25987", dwell_minutes=600
            ),
        )
        link_venue(actor=None, venue=gate, enterprise=unit)
        people = [f"0742{n:02d}{i:06d}" for i in range(size)]
        import_roster(
            actor=None,
            enterprise=unit,
            workers=[(i, WorkerInput(p, date(2021, 1, 4), None)) for i, p in enumerate(people, start=1)],
        )
        _events(records, rng, tax, people, positive, covered)
    for kind, items in records.items():
        ingest(source, kind, list(enumerate(items, start=1)))
    for username, full_name, tax in USERS:
        if not User.objects.filter(username=username).exists():
            unit = Unit.objects.get(edition_id=park.edition_id, code=tax)
            create_user(
                actor=None,
                username=username,
                password=password,
                grants=[(unit, "enterprise")],
                full_name=full_name,
                validate=False,
            )
    workers = sum(f[2] for f in FACTORIES)
    return [
        f"Khu công nghiệp mẫu: {park.name} ({park.ref}), {len(factories)} nhà máy, {workers} người lao động; "
        f"đăng ký trên bản đồ 2021 ở Bình Dương, theo sắp xếp 2025 chuyển về TP. Hồ Chí Minh "
        f"({len(moved.moved)} đơn vị chuyển).",
        *_logins(),
    ]


def _events(
    records: dict[str, list[dict]],
    rng: random.Random,
    tax: str,
    people: list[str],
    positive: float,
    covered: float,
) -> None:
    def at(day: int, hour: int) -> str:
        return (
            datetime.combine(START + timedelta(days=day), datetime.min.time(), VN_TZ)
            .replace(hour=hour)
            .isoformat()
        )

    for i, person in enumerate(people):
        home = rng.choice(HOMES)
        seid = f"kcn-{tax}-{i}"
        doses = 2 if rng.random() < covered else (1 if rng.random() < 0.5 else 0)
        for dose in range(1, doses + 1):
            records["vaccination"].append({
                "source_event_id": f"{seid}-v{dose}", "person_id": person, "commune": f"VN-2025:{home}",
                "vaccinated_at": f"2025-0{4 + dose}-1{dose}T09:00:00+07:00", "dose": dose,
                "vaccine": "AstraZeneca",
            })  # fmt: skip
        sick = rng.random() < positive
        day = rng.randrange(DAYS)
        records["test"].append({
            "source_event_id": f"{seid}-t", "person_id": person, "commune": f"VN-2025:{home}",
            "sampled_at": at(day, 8), "method": "rapid", "result": "positive" if sick else "negative",
        })  # fmt: skip
        if sick:
            records["quarantine"].append({
                "source_event_id": f"{seid}-q", "person_id": person, "commune": f"VN-2025:{home}",
                "start": at(day, 14), "place": rng.choice(["home", "facility"]),
            })  # fmt: skip
        for d in range(day if sick else DAYS):  # at the gate every day, until a positive test
            records["checkin"].append({
                "source_event_id": f"{seid}-c{d}", "venue": f"G-{tax}", "person_id": person,
                "time_in": at(d, 7), "time_out": at(d, 17),
            })  # fmt: skip


def _logins() -> list[str]:
    lines = []
    for username, _full, tax in USERS:
        unit = Unit.objects.filter(code=tax, kind__in=["enterprise", "industrial_park"]).first()
        if unit is not None:
            lines.append(f"  {username:<10} {'enterprise':<9} {unit.name} ({unit.ref})")
    return lines
