"""Synthetic source data: venues and the seven event kinds, as the source platforms would send them.

Used by the demo (`dieuhanh synth`), the tests and the benchmarks. People live in real communes of
the chosen map edition, concentrated in a random subset of them; they check in at a few favourite
venues near home with a daily rhythm, declare their health and travel, get tested, vaccinated and
quarantined. A few venues seed outbreaks: their visitors on outbreak days test positive a few days
later at a high rate, and so do some people who shared a venue with them while infectious, so that
tracing finds clusters. Everything is drawn from one `random.Random(seed)`: the same arguments
always write the same bytes.
"""

from __future__ import annotations

import csv
import json
import random
from bisect import bisect
from collections.abc import Callable, Collection
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import IO, Any

from dieuhanh.units.models import Edition, Unit

Progress = Callable[[str, int, int], None]
"""progress(step, done, total): called as generation goes, for a progress bar."""

EVENT_KINDS = ("checkin", "health", "travel", "test", "vaccination", "quarantine", "report")
ID_PREFIX = {
    "checkin": "chk",
    "health": "hlt",
    "travel": "trv",
    "test": "tst",
    "vaccination": "vac",
    "quarantine": "qrt",
    "report": "rpt",
}
VENUE_FIELDS = ("code", "name", "kind", "commune", "lat", "lon", "dwell_minutes")
# kind: (share of venues, typical stay in minutes)
VENUE_KINDS: dict[str, tuple[int, int]] = {
    "market": (18, 45),
    "school": (10, 300),
    "factory": (8, 480),
    "hospital": (4, 90),
    "office": (18, 480),
    "transport": (5, 30),
    "other": (37, 60),
}
# Check-ins per hour of the day, by venue kind: work and school in the morning, markets morning and
# late afternoon, the rest around meals and the evening.
_MORNING_WORK = (0, 0, 0, 0, 0, 2, 10, 30, 25, 8, 3, 2, 3, 4, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0)
HOURLY_RHYTHM: dict[str, tuple[int, ...]] = {
    "market": (0, 0, 0, 0, 1, 6, 14, 16, 10, 6, 4, 3, 2, 2, 3, 6, 10, 12, 8, 3, 1, 0, 0, 0),
    "school": _MORNING_WORK,
    "factory": (1, 0, 0, 0, 0, 4, 16, 30, 8, 2, 1, 1, 1, 2, 6, 2, 1, 1, 2, 2, 1, 1, 6, 1),
    "hospital": (1, 1, 1, 1, 1, 2, 8, 14, 14, 12, 9, 5, 3, 8, 9, 7, 5, 3, 2, 2, 1, 1, 1, 1),
    "office": _MORNING_WORK,
    "transport": (1, 1, 1, 1, 2, 6, 9, 9, 6, 5, 5, 5, 5, 5, 5, 6, 8, 9, 7, 5, 4, 3, 2, 1),
    "other": (1, 0, 0, 0, 0, 1, 4, 7, 5, 4, 5, 10, 9, 4, 3, 3, 4, 7, 12, 12, 9, 5, 3, 1),
}
SYMPTOMS = ("fever", "cough", "breath", "taste_smell", "fatigue")
DEFAULT_START = {"VN-2021": date(2021, 7, 19), "VN-2025": date(2025, 7, 1)}

DAY = 86_400
HOUR = 3_600
# Events per person per day, and the share of people concerned; tuned so that a demo of 50,000
# people over a month gives a few million rows.
CHECKINS_PER_PERSON_DAY = 1.1
HEALTH_SHARE, TRAVEL_SHARE, TEST_SHARE, REPORT_SHARE = 0.06, 0.012, 0.008, 0.002
VACCINATION_SHARE = {"VN-2021": 0.02, "VN-2025": 0.002}
# Infection: attack rate at an outbreak venue, per overlapping visit with an infectious person,
# and the background positivity of routine tests.
SEED_ATTACK, CONTACT_ATTACK, BACKGROUND_POSITIVE = 0.35, 0.05, 0.002
TRACED_CONTACT_TESTED = 0.6


# ---------------------------------------------------------------- communes, people, venues


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    name: str
    province: str
    lat: float
    lon: float

    @property
    def short_name(self) -> str:
        for prefix in ("Phường ", "Xã ", "Thị trấn ", "Đặc khu "):
            if self.name.startswith(prefix):
                return self.name[len(prefix) :]
        return self.name

    @property
    def urban_weight(self) -> float:
        """Wards are denser than rural communes; a township lies in between."""
        if self.name.startswith("Phường"):
            return 4.0
        return 2.0 if self.name.startswith("Thị trấn") else 1.0


@dataclass(frozen=True, slots=True)
class Venue:
    code: str
    name: str
    kind: str
    commune: int
    lat: float
    lon: float
    dwell_minutes: int | None

    @property
    def stay_seconds(self) -> int:
        return 60 * (self.dwell_minutes or VENUE_KINDS[self.kind][1])


@dataclass
class People:
    home: list[int] = field(default_factory=list)  # index into communes
    ids: list[str] = field(default_factory=list)
    favourites: list[tuple[int, ...]] = field(default_factory=list)  # venue indices, most visited first
    activity: list[float] = field(default_factory=list)  # cumulative, for weighted draws

    def __len__(self) -> int:
        return len(self.ids)


def read_communes(edition: str) -> list[Commune]:
    rows = (
        Unit.objects.filter(edition_id=edition, kind="commune")
        .order_by("code")
        .values_list("code", "name", "path", "lat", "lon")
    )
    communes = [
        Commune(code.zfill(5), name, path.split("/")[2], lat or 0.0, lon or 0.0)
        for code, name, path, lat, lon in rows
    ]
    if not communes:
        raise ValueError(f"no communes of edition {edition!r}: load the units first")
    return communes


def default_start(edition: str) -> date:
    if edition in DEFAULT_START:
        return DEFAULT_START[edition]
    return Edition.objects.get(code=edition).effective_from


def commune_populations(
    rng: random.Random, communes: list[Commune], scale: int, focus: Collection[str] = ()
) -> list[float]:
    """Weights of the communes people live in: a random subset, favouring wards, heavy-tailed.

    Communes in `focus` (codes) are always lived in, so that a demo's own wards have data.
    """
    active = min(len(communes), max(10, scale // 25))
    # Weighted sampling without replacement (Efraimidis–Spirakis keys).
    keys = [rng.random() ** (1.0 / c.urban_weight) for c in communes]
    chosen = sorted(range(len(communes)), key=keys.__getitem__, reverse=True)[:active]
    weights = [0.0] * len(communes)
    for i in sorted(chosen):
        weights[i] = communes[i].urban_weight * min(rng.paretovariate(1.2), 40.0)
    for i, commune in enumerate(communes):
        if commune.code in focus:
            weights[i] = max(weights[i], commune.urban_weight * 10.0)
    return weights


# Mobile prefixes since the 2018 renumbering (all start 03, 05, 07, 08 or 09).
PHONE_PREFIXES = (  # noqa: SIM905 - a table reads better as one string
    "032 033 034 035 036 037 038 039 056 058 059 070 076 077 078 079 "
    "081 082 083 084 085 086 088 089 090 091 092 093 094 096 097 098 099"
).split()


def written_phone(rng: random.Random, digits9: str) -> str:
    """A mobile number as people type it into the apps."""
    r = rng.random()
    if r < 0.5:
        return "0" + digits9
    if r < 0.75:
        return f"+84 {digits9[:3]} {digits9[3:6]} {digits9[6:]}"
    if r < 0.95:
        return "84" + digits9
    return "+84" + digits9


def new_person_id(rng: random.Random, province: str, taken: set[str]) -> str:
    """A 12-digit CCCD (province, sex and century, birth year, 6 digits) or, for 30%, a mobile number."""
    while True:
        if rng.random() < 0.3:
            digits9 = rng.choice(PHONE_PREFIXES)[1:] + f"{rng.randrange(10**7):07d}"
            if digits9 not in taken:
                taken.add(digits9)
                return written_phone(rng, digits9)
        else:
            year = rng.randint(1940, 2015)
            sex_century = (0 if year < 2000 else 2) + rng.randrange(2)
            cccd = f"{int(province):03d}{sex_century}{year % 100:02d}{rng.randrange(10**6):06d}"
            if cccd not in taken:
                taken.add(cccd)
                return cccd


def place_people(rng: random.Random, communes: list[Commune], weights: list[float], scale: int) -> People:
    people = People()
    people.home = sorted(rng.choices(range(len(communes)), weights=weights, k=scale))
    taken: set[str] = set()
    people.ids = [new_person_id(rng, communes[c].province, taken) for c in people.home]
    # Some people check in far more than others (workers, shoppers).
    people.activity = list(accumulate(rng.expovariate(1.0) for _ in range(scale)))
    return people


FAMOUS_NAMES = (
    "Nguyễn Du",
    "Lê Lợi",
    "Trần Hưng Đạo",
    "Lý Thường Kiệt",
    "Chu Văn An",
    "Nguyễn Trãi",
    "Quang Trung",
    "Lê Quý Đôn",
    "Hai Bà Trưng",
    "Võ Thị Sáu",
    "Nguyễn Thị Minh Khai",
    "Phan Chu Trinh",
    "Phan Bội Châu",
    "Nguyễn Khuyến",
    "Lương Thế Vinh",
)
BRAND_SYLLABLES = (  # noqa: SIM905
    "Phú Thành Hoàng Long Minh An Việt Hưng Phát Đại Tân Sao Mai Kim Hòa Bình Thịnh Nam Á Đông"
).split()
INDUSTRIES = ("May mặc", "Giày da", "Điện tử", "Thực phẩm", "Cơ khí", "Bao bì", "Nhựa", "Chế biến gỗ")
SERVICES = ("Thương mại", "Công nghệ", "Xây dựng", "Tư vấn", "Vận tải", "Dịch vụ")


def brand(rng: random.Random) -> str:
    first, second = rng.sample(BRAND_SYLLABLES, 2)
    return f"{first} {second}"


def venue_name(rng: random.Random, kind: str, commune: Commune) -> str:
    place = commune.short_name
    names: dict[str, Callable[[], str]] = {
        "market": lambda: rng.choice((f"Chợ {place}", f"Chợ đầu mối {place}", f"Siêu thị mini {brand(rng)}")),
        "school": lambda: (
            "Trường " + rng.choice(("Mầm non", "Tiểu học", "THCS", "THPT")) + " " + rng.choice(FAMOUS_NAMES)
        ),
        "factory": lambda: f"Công ty TNHH {rng.choice(INDUSTRIES)} {brand(rng)}",
        "hospital": lambda: rng.choice(
            (f"Bệnh viện Đa khoa {place}", f"Trạm Y tế {commune.name}", f"Phòng khám Đa khoa {brand(rng)}")
        ),
        "office": lambda: rng.choice(
            (f"Công ty CP {rng.choice(SERVICES)} {brand(rng)}", f"UBND {commune.name}", f"Bưu điện {place}")
        ),
        "transport": lambda: rng.choice((f"Bến xe {place}", f"Ga {place}", f"Bến phà {place}")),
        "other": lambda: rng.choice(
            (
                f"Nhà hàng {brand(rng)}",
                f"Quán cà phê {brand(rng)}",
                f"Nhà văn hóa {place}",
                f"Chùa {place}",
                f"Phòng tập {brand(rng)}",
            )
        ),
    }
    return names[kind]()


def place_venues(rng: random.Random, communes: list[Commune], people: People, count: int) -> list[Venue]:
    """Venues where people live, numbered per province ('V79-000123')."""
    residents = [0] * len(communes)
    for c in people.home:
        residents[c] += 1
    kinds = list(VENUE_KINDS)
    kind_weights = [VENUE_KINDS[k][0] for k in kinds]
    sites = sorted(rng.choices(range(len(communes)), weights=residents, k=count))
    per_province: dict[str, int] = {}
    venues = []
    for c in sites:
        commune = communes[c]
        kind = rng.choices(kinds, weights=kind_weights)[0]
        number = per_province[commune.province] = per_province.get(commune.province, 0) + 1
        dwell = None if rng.random() < 0.1 else VENUE_KINDS[kind][1]
        lat = round(commune.lat + rng.gauss(0, 0.008), 6)
        lon = round(commune.lon + rng.gauss(0, 0.008), 6)
        code = f"V{commune.province}-{number:06d}"
        venues.append(Venue(code, venue_name(rng, kind, commune), kind, c, lat, lon, dwell))
    return venues


def choose_favourites(
    rng: random.Random, communes: list[Commune], people: People, venues: list[Venue]
) -> None:
    """Two to four venues per person: mostly in the home commune, else the province, rarely afar."""
    by_commune: dict[int, list[int]] = {}
    by_province: dict[str, list[int]] = {}
    for i, v in enumerate(venues):
        by_commune.setdefault(v.commune, []).append(i)
        by_province.setdefault(communes[v.commune].province, []).append(i)
    everywhere = list(range(len(venues)))
    for home in people.home:
        near = by_commune.get(home) or by_province.get(communes[home].province) or everywhere
        province = by_province.get(communes[home].province) or everywhere
        picks: list[int] = []
        for _ in range(rng.randint(2, 4)):
            r = rng.random()
            pool = near if r < 0.65 else province if r < 0.95 else everywhere
            venue = rng.choice(pool)
            if venue not in picks:
                picks.append(venue)
        people.favourites.append(tuple(picks))


def write_venues(path: Path, communes: list[Commune], venues: list[Venue]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(VENUE_FIELDS)
        for v in venues:
            dwell = "" if v.dwell_minutes is None else v.dwell_minutes
            writer.writerow((v.code, v.name, v.kind, communes[v.commune].code, v.lat, v.lon, dwell))


# ---------------------------------------------------------------- time and lines


@cache
def clock_faces() -> list[str]:
    """'HH:MM:SS' for every second of a day: looking a time up is faster than formatting it."""
    return [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]


class Clock:
    """Seconds since midnight of the first day → ISO 8601 local time ('2021-07-19T07:30:05+07:00')."""

    def __init__(self, start: date):
        self.start = start
        self.faces = clock_faces()
        self._dates: list[str] = []

    def date_prefix(self, day: int) -> str:
        """'2021-07-19T' for day 0."""
        while len(self._dates) <= day:
            self._dates.append((self.start + timedelta(days=len(self._dates))).isoformat() + "T")
        return self._dates[day]

    def iso(self, t: int) -> str:
        day, second = divmod(t, DAY)
        return f"{self.date_prefix(day)}{self.faces[second]}+07:00"


def checkin_line(number: int, venue: str, person: str, time_in: str, time_out: str | None) -> str:
    # Built by hand: the benchmark needs a million of these quickly, and no value needs escaping.
    out = "" if time_out is None else f',"time_out":"{time_out}"'
    return (
        f'{{"source_event_id":"chk-{number:09d}","venue":"{venue}","person_id":"{person}",'
        f'"time_in":"{time_in}"{out}}}\n'
    )


def event_line(kind: str, number: int, payload: dict[str, Any]) -> str:
    record = {"source_event_id": f"{ID_PREFIX[kind]}-{number:09d}", **payload}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


# ---------------------------------------------------------------- the simulation


Checkin = tuple[int, int | None, int, int]
"""(time in, time out or None, person, venue); times in seconds since the first midnight."""


@dataclass
class Infection:
    infectious_from: int  # day
    sampled: int  # day of the positive test, after which the person is isolated


class Simulation:
    """Day by day: events of a day are all known before it is written, so each file stays sorted."""

    def __init__(
        self,
        rng: random.Random,
        communes: list[Commune],
        people: People,
        venues: list[Venue],
        *,
        days: int,
        edition: str,
        clock: Clock,
    ):
        self.rng, self.communes, self.people, self.venues = rng, communes, people, venues
        self.days, self.edition, self.clock = days, edition, clock
        self.rhythm = {kind: list(accumulate(w)) for kind, w in HOURLY_RHYTHM.items()}
        self.infections: dict[int, Infection] = {}
        self.isolation: dict[int, range] = {}  # person → days kept away from venues
        self.traced_on: dict[int, int] = {}  # person → day last found as a contact
        self.doses, self.vaccine, self.last_dose = self._vaccination_history()
        self.outbreaks = self._outbreak_days()
        self.pending: dict[int, dict[str, list[tuple[int, dict[str, Any]]]]] = {}
        self.population_cum = list(accumulate(self._residents()))

    # ---- set-up

    def _residents(self) -> list[int]:
        counts = [0] * len(self.communes)
        for c in self.people.home:
            counts[c] += 1
        return counts

    def _vaccination_history(self) -> tuple[list[int], list[str], list[int]]:
        prior = (0, 1, 2) if self.edition == "VN-2021" else (2, 3)
        prior_weights = (55, 30, 15) if self.edition == "VN-2021" else (60, 40)
        n = len(self.people)
        doses = self.rng.choices(prior, weights=prior_weights, k=n)
        vaccine = self.rng.choices(("AstraZeneca", "Pfizer", "Moderna", "Sinopharm"), (40, 25, 10, 25), k=n)
        return doses, vaccine, [-60] * n

    def _outbreak_days(self) -> dict[int, range]:
        """Three to five popular venues, each with one to two outbreak days in the first two thirds."""
        popularity = [0] * len(self.venues)
        for favourites in self.people.favourites:
            for v in favourites:
                popularity[v] += 1
        ranked = sorted(range(len(self.venues)), key=lambda v: (-popularity[v], v))
        count = min(len(ranked), self.rng.randint(3, 5))
        seeds = sorted(self.rng.sample(ranked[: max(count, len(ranked) // 4)], count))
        outbreaks = {}
        for v in seeds:
            first = self.rng.randrange(max(1, self.days * 2 // 3))
            outbreaks[v] = range(first, first + self.rng.randint(1, 2))
        return outbreaks

    # ---- scheduling

    def emit(self, kind: str, t: int, payload: dict[str, Any]) -> None:
        """Keep an event for the day it happens on; those after the last day are never written."""
        day = t // DAY
        if day < self.days:
            self.pending.setdefault(day, {}).setdefault(kind, []).append((t, payload))

    def events_of(self, day: int) -> dict[str, list[dict[str, Any]]]:
        by_kind = self.pending.pop(day, {})
        return {
            kind: [p for _, p in sorted(by_kind.get(kind, []), key=lambda e: e[0])] for kind in EVENT_KINDS
        }

    def at(self, day: int, first_hour: int, last_hour: int) -> int:
        return day * DAY + self.rng.randrange(first_hour * HOUR, last_hour * HOUR)

    def someone(self) -> int:
        return self.rng.randrange(len(self.people))

    def commune_code(self, person: int) -> str:
        return self.communes[self.people.home[person]].code

    def populated_commune(self) -> int:
        return bisect(self.population_cum, self.rng.random() * self.population_cum[-1])

    # ---- one day

    def run_day(self, day: int) -> list[Checkin]:
        checkins = self.checkins(day)
        self.spread(day, checkins)
        self.routine_tests(day)
        self.health_declarations(day)
        self.travel_declarations(day)
        self.vaccinations(day)
        self.reports(day)
        return checkins

    def checkins(self, day: int) -> list[Checkin]:
        weekday = (self.clock.start + timedelta(days=day)).weekday()
        volume = int(len(self.people) * CHECKINS_PER_PERSON_DAY * (1.0 if weekday < 5 else 0.8))
        visitors = self.rng.choices(range(len(self.people)), cum_weights=self.people.activity, k=volume)
        checkins = [self.visit(day, p) for p in visitors if day not in self.isolation.get(p, ())]
        checkins.sort(key=lambda c: c[0])
        return checkins

    def visit(self, day: int, person: int) -> Checkin:
        rng = self.rng
        favourites = self.people.favourites[person]
        r = rng.random()
        venue = favourites[0] if r < 0.5 or len(favourites) == 1 else rng.choice(favourites[1:])
        if r > 0.95:
            venue = rng.randrange(len(self.venues))
        kind = self.venues[venue].kind
        cum = self.rhythm[kind]
        hour = bisect(cum, rng.random() * cum[-1])
        time_in = day * DAY + hour * HOUR + rng.randrange(HOUR)
        if rng.random() < 0.2:
            return time_in, None, person, venue
        stay = int(self.venues[venue].stay_seconds * (0.4 + rng.random()))
        return time_in, time_in + stay + 60, person, venue

    # ---- infection

    def spread(self, day: int, checkins: list[Checkin]) -> None:
        """Visitors of an outbreak venue on its days, and of a venue while an infectious person was there."""
        infectious_at: dict[int, list[tuple[int, int]]] = {}
        for time_in, time_out, person, venue in checkins:
            infection = self.infections.get(person)
            if infection and infection.infectious_from <= day <= infection.sampled:
                end = time_out or time_in + self.venues[venue].stay_seconds
                infectious_at.setdefault(venue, []).append((time_in, end))
        for time_in, time_out, person, venue in checkins:
            if day in self.outbreaks.get(venue, ()):
                self.expose(person, day, SEED_ATTACK)
            elif venue in infectious_at:
                end = time_out or time_in + self.venues[venue].stay_seconds
                if any(s < end and time_in < e for s, e in infectious_at[venue]):
                    self.expose(person, day, CONTACT_ATTACK)

    def expose(self, person: int, day: int, attack: float) -> None:
        if person in self.infections:
            return
        if self.rng.random() < attack:
            self.infect(person, day)
        elif self.rng.random() < TRACED_CONTACT_TESTED:
            self.trace_negative(person, day)

    def infect(self, person: int, day: int) -> None:
        sampled = day + self.rng.choices((1, 2, 3, 4), weights=(2, 4, 3, 1))[0]
        self.infections[person] = Infection(day + 1, sampled)
        self.isolation[person] = range(sampled + 1, sampled + 15)
        self.positive_case(person, sampled)

    def positive_case(self, person: int, day: int) -> None:
        """The test, the symptoms declared before it, and isolation in a facility from the result."""
        commune = self.commune_code(person)
        pid = self.people.ids[person]
        taken = self.at(day, 7, 16)
        if self.rng.random() < 0.7:
            declared = taken - self.rng.randrange(HOUR, 3 * HOUR)
            symptoms = sorted(self.rng.sample(SYMPTOMS, self.rng.randint(1, 3)), key=SYMPTOMS.index)
            self.emit("health", declared, self.health(pid, commune, declared, symptoms, exposure=True))
        method = "rapid" if self.rng.random() < 0.4 else "pcr"
        self.emit("test", taken, self.test(pid, commune, taken, method, "positive"))
        if method == "rapid":
            confirmed = taken + self.rng.randrange(HOUR, 4 * HOUR)
            self.emit("test", confirmed, self.test(pid, commune, confirmed, "pcr", "positive"))
        self.quarantine(person, self.at(day + 1, 8, 18), "facility", 14)

    def trace_negative(self, person: int, day: int) -> None:
        """A contact found by tracing: tested a day or two later, negative, often kept at home."""
        if day - self.traced_on.get(person, -99) < 3:  # one tracing call covers several contacts
            return
        self.traced_on[person] = day
        pid, commune = self.people.ids[person], self.commune_code(person)
        taken = self.at(day + self.rng.randint(1, 2), 7, 17)
        self.emit("test", taken, self.test(pid, commune, taken, "pcr", "negative"))
        if self.rng.random() < 0.5:
            self.isolation.setdefault(person, range(taken // DAY, taken // DAY + 7))
            self.quarantine(person, taken + HOUR, "home", 7)

    def quarantine(self, person: int, start: int, place: str, days: int) -> None:
        record: dict[str, Any] = {"person_id": self.people.ids[person], "commune": self.commune_code(person)}
        record |= {"start": self.clock.iso(start), "place": place}
        end = start + days * DAY
        if end // DAY < self.days:  # not over yet when the data stops: no end
            record["end"] = self.clock.iso(end)
        self.emit("quarantine", start, record)

    # ---- routine events

    def routine_tests(self, day: int) -> None:
        for _ in range(self.count(TEST_SHARE)):
            person = self.someone()
            method = "rapid" if self.rng.random() < 0.6 else "pcr"
            taken = self.at(day, 6, 20)
            record = self.test(
                self.people.ids[person], self.commune_code(person), taken, method, self.routine_result(method)
            )
            self.emit("test", taken, record)

    def routine_result(self, method: str) -> str:
        r = self.rng.random()
        if r < BACKGROUND_POSITIVE:
            return "positive"
        return "invalid" if method == "rapid" and r > 0.99 else "negative"

    def health_declarations(self, day: int) -> None:
        for _ in range(self.count(HEALTH_SHARE)):
            person = self.someone()
            symptoms: list[str] = []
            if self.rng.random() < 0.07:
                symptoms = sorted(self.rng.sample(SYMPTOMS, self.rng.randint(1, 2)), key=SYMPTOMS.index)
            declared = self.at(day, 6, 23)
            exposure = self.rng.random() < 0.02
            record = self.health(
                self.people.ids[person], self.commune_code(person), declared, symptoms, exposure
            )
            self.emit("health", declared, record)

    def travel_declarations(self, day: int) -> None:
        for _ in range(self.count(TRAVEL_SHARE)):
            person = self.someone()
            home = self.people.home[person]
            destination = self.destination(home)
            same_province = self.communes[destination].province == self.communes[home].province
            mode = self.travel_mode(same_province)
            depart = self.at(day, 5, 22)
            record = {"person_id": self.people.ids[person], "from_commune": self.communes[home].code}
            record |= {"to_commune": self.communes[destination].code, "depart_at": self.clock.iso(depart)}
            if self.rng.random() < 0.85:
                hours = {"road": (1, 10), "rail": (3, 30), "air": (2, 4), "water": (1, 6)}[mode]
                record["arrive_at"] = self.clock.iso(depart + self.rng.randint(*hours) * HOUR)
            record["mode"] = mode
            self.emit("travel", depart, record)

    def destination(self, home: int) -> int:
        """Another commune, most often in the same province; any commune at all now and then."""
        for _ in range(20):
            if self.rng.random() < 0.1:
                candidate = self.rng.randrange(len(self.communes))
            else:
                candidate = self.populated_commune()
            same = self.communes[candidate].province == self.communes[home].province
            if candidate != home and (same or self.rng.random() < 0.45):
                return candidate
        return (home + 1) % len(self.communes)

    def travel_mode(self, same_province: bool) -> str:
        if same_province:
            return self.rng.choices(("road", "rail", "water"), weights=(90, 4, 6))[0]
        return self.rng.choices(("road", "rail", "air", "water"), weights=(58, 12, 27, 3))[0]

    def vaccinations(self, day: int) -> None:
        wanted, attempts = self.count(VACCINATION_SHARE.get(self.edition, 0.005)), 0
        while wanted and attempts < 4 * wanted + 10:
            attempts += 1
            person = self.someone()
            if self.doses[person] >= 4 or day - self.last_dose[person] < 28 or person in self.infections:
                continue
            wanted -= 1
            self.doses[person] += 1
            self.last_dose[person] = day
            dose = self.doses[person]
            vaccine = self.vaccine[person] if dose <= 2 else self.rng.choice(("Pfizer", "Moderna"))
            given = self.at(day, 7, 17)
            record: dict[str, Any] = {
                "person_id": self.people.ids[person],
                "commune": self.commune_code(person),
            }
            record |= {"vaccinated_at": self.clock.iso(given), "dose": dose, "vaccine": vaccine}
            self.emit("vaccination", given, record)

    def reports(self, day: int) -> None:
        for _ in range(max(1, self.count(REPORT_SHARE))):
            category = self.rng.choices(list(REPORT_TEXTS), weights=(25, 15, 20, 25, 15))[0]
            reported = self.at(day, 6, 23)
            record: dict[str, Any] = {"commune": self.communes[self.populated_commune()].code}
            record |= {"reported_at": self.clock.iso(reported), "category": category}
            record["text"] = self.rng.choice(REPORT_TEXTS[category])
            if self.rng.random() < 0.6:
                record["person_id"] = self.people.ids[self.someone()]
            self.emit("report", reported, record)

    # ---- records

    def count(self, share: float) -> int:
        """People concerned today: the share of the population, with the fraction drawn at random."""
        expected = len(self.people) * share
        return int(expected) + (self.rng.random() < expected % 1)

    def health(self, pid: str, commune: str, t: int, symptoms: list[str], exposure: bool) -> dict[str, Any]:
        return {
            "person_id": pid,
            "commune": commune,
            "declared_at": self.clock.iso(t),
            "symptoms": symptoms,
            "exposure": exposure,
        }

    def test(self, pid: str, commune: str, t: int, method: str, result: str) -> dict[str, Any]:
        return {
            "person_id": pid,
            "commune": commune,
            "sampled_at": self.clock.iso(t),
            "method": method,
            "result": result,
        }


REPORT_TEXTS: dict[str, tuple[str, ...]] = {
    "gathering": (
        "Có nhóm người tụ tập đông người tại khu dân cư.",
        "Quán ăn vẫn mở cửa phục vụ tại chỗ, nhiều người tụ tập.",
        "Người dân tập thể dục đông ở công viên vào buổi sáng.",
    ),
    "price": (
        "Giá rau xanh tại chợ tăng gấp đôi so với tuần trước.",
        "Cửa hàng bán khẩu trang với giá cao bất thường.",
        "Giá thịt lợn tăng mạnh trong mấy ngày gần đây.",
    ),
    "supplies": (
        "Khu phong tỏa cần hỗ trợ gạo và thực phẩm.",
        "Nhiều hộ gia đình khó khăn đang thiếu lương thực.",
        "Siêu thị gần nhà hết hàng thiết yếu.",
    ),
    "medical": (
        "Người dân có triệu chứng sốt, ho cần được hỗ trợ y tế.",
        "Cần bình oxy cho người bệnh đang điều trị tại nhà.",
        "Đề nghị bố trí thêm điểm xét nghiệm cho khu phố.",
    ),
    "other": (
        "Loa phát thanh của khu phố bị hỏng.",
        "Đề nghị hướng dẫn thủ tục cấp giấy đi đường.",
        "Rác thải chưa được thu gom nhiều ngày.",
    ),
}


# ---------------------------------------------------------------- output


class EventFiles:
    """One NDJSON file per kind, numbered line by line so that source_event_id is unique per file."""

    def __init__(self, stack: ExitStack, out_dir: Path, clock: Clock, venues: list[Venue], people: People):
        self.files: dict[str, IO[str]] = {
            kind: stack.enter_context((out_dir / f"{kind}.ndjson").open("w", encoding="utf-8", newline="\n"))
            for kind in EVENT_KINDS
        }
        self.counts = dict.fromkeys(EVENT_KINDS, 0)
        self.clock, self.venues, self.people = clock, venues, people

    def write_checkins(self, checkins: list[Checkin]) -> None:
        iso, venues, ids, first = self.clock.iso, self.venues, self.people.ids, self.counts["checkin"]
        lines = [
            checkin_line(
                first + i + 1, venues[v].code, ids[p], iso(t_in), None if t_out is None else iso(t_out)
            )
            for i, (t_in, t_out, p, v) in enumerate(checkins)
        ]
        self.files["checkin"].write("".join(lines))
        self.counts["checkin"] += len(lines)

    def write_events(self, kind: str, records: list[dict[str, Any]]) -> None:
        first = self.counts[kind]
        self.files[kind].write("".join(event_line(kind, first + i + 1, r) for i, r in enumerate(records)))
        self.counts[kind] += len(records)


# ---------------------------------------------------------------- entry points


def build_world(
    rng: random.Random, edition: str, scale: int, venue_count: int, focus: Collection[str] = ()
) -> tuple[list[Commune], People, list[Venue]]:
    communes = read_communes(edition)
    people = place_people(rng, communes, commune_populations(rng, communes, scale, focus), scale)
    venues = place_venues(rng, communes, people, venue_count)
    choose_favourites(rng, communes, people, venues)
    return communes, people, venues


def generate(
    out_dir: Path,
    *,
    scale: int,
    days: int,
    edition: str,
    seed: int = 1,
    start: date | None = None,
    progress: Progress | None = None,
    focus: Collection[str] = (),
) -> dict[str, int]:
    """Write venues.csv and one NDJSON file per event kind into out_dir; return {file stem: rows written}."""
    if scale < 1 or days < 1:
        raise ValueError("scale and days must be at least 1")
    tick = progress or (lambda step, done, total: None)
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    tick("Dân cư và địa điểm", 0, 1)
    communes, people, venues = build_world(rng, edition, scale, max(10, scale // 20), focus)
    write_venues(out_dir / "venues.csv", communes, venues)
    tick("Dân cư và địa điểm", 1, 1)
    clock = Clock(start or default_start(edition))
    simulation = Simulation(rng, communes, people, venues, days=days, edition=edition, clock=clock)
    with ExitStack() as stack:
        files = EventFiles(stack, out_dir, clock, venues, people)
        for day in range(days):
            tick("Sự kiện theo ngày", day, days)
            files.write_checkins(simulation.run_day(day))
            for kind, records in simulation.events_of(day).items():
                files.write_events(kind, records)
        tick("Sự kiện theo ngày", days, days)
    return {"venues": len(venues), **files.counts}


def checkins_only(path: Path, *, n: int, venues: int, edition: str, seed: int = 1) -> None:
    """Write exactly n check-in lines to path, quickly, and the venues they refer to beside it."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    communes, people, venue_list = build_world(rng, edition, max(100, min(n // 50, 50_000)), max(1, venues))
    write_venues(path.parent / "venues.csv", communes, venue_list)
    days = max(1, min(28, n // 40_000))
    fast = FastCheckins(rng, Clock(default_start(edition)), people, venue_list)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        written = 0
        for day in range(days):
            count = n // days + (day < n % days)
            f.write(fast.day(day, count, first=written + 1))
            written += count


class FastCheckins:
    """Check-ins without the simulation, for the ingest benchmark: the hot loop draws random() into
    lookup tables rather than calling randrange() or choices(), and looks times up by the second."""

    def __init__(self, rng: random.Random, clock: Clock, people: People, venues: list[Venue]):
        self.random, self.clock, self.people = rng.random, clock, people
        self.hours = [h for h, weight in enumerate(HOURLY_RHYTHM["other"]) for _ in range(weight)]
        self.visitors = activity_table(people)
        self.codes = [v.code for v in venues]
        self.stays = [v.stay_seconds for v in venues]

    def seconds(self, count: int) -> list[int]:
        random_, hours = self.random, self.hours
        return sorted(hours[int(random_() * len(hours))] * HOUR + int(random_() * HOUR) for _ in range(count))

    def day(self, day: int, count: int, *, first: int) -> str:
        """A day's lines, sorted by time: people by activity, at one of their favourite venues."""
        random_, faces, visitors, codes, stays = (
            self.random,
            self.clock.faces,
            self.visitors,
            self.codes,
            self.stays,
        )
        favourites, ids = self.people.favourites, self.people.ids
        today, tomorrow = self.clock.date_prefix(day), self.clock.date_prefix(day + 1)
        lines = []
        for number, second in enumerate(self.seconds(count), first):
            person = visitors[int(random_() * len(visitors))]
            favourite = favourites[person]
            venue = favourite[int(random_() * len(favourite))]
            time_in = f"{today}{faces[second]}+07:00"
            time_out = None
            r = random_()
            if r >= 0.2:
                out = second + int(stays[venue] * (0.4 + r))
                time_out = (
                    f"{today}{faces[out]}+07:00" if out < DAY else f"{tomorrow}{faces[out - DAY]}+07:00"
                )
            lines.append(checkin_line(number, codes[venue], ids[person], time_in, time_out))
        return "".join(lines)


def activity_table(people: People) -> list[int]:
    """Each person repeated in proportion to their activity: a uniform pick from it is a weighted pick."""
    table = []
    previous = 0.0
    for person, cumulative in enumerate(people.activity):
        table.extend([person] * round(4 * (cumulative - previous)))
        previous = cumulative
    return table or list(range(len(people)))
