"""The synthetic data generator: files a source platform could have sent, on the real map."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from dieuhanh.units.models import Unit
from dieuhanh.warehouse.persons import normalise
from dieuhanh.warehouse.synth import checkins_only, generate

SCALE, DAYS = 500, 3
KINDS = ("checkin", "health", "travel", "test", "vaccination", "quarantine", "report")
# kind: (required fields, optional fields, time field the file is sorted by)
CONTRACT: dict[str, tuple[set[str], set[str], str]] = {
    "checkin": ({"venue", "person_id", "time_in"}, {"time_out"}, "time_in"),
    "health": ({"person_id", "commune", "declared_at", "symptoms", "exposure"}, set(), "declared_at"),
    "travel": ({"person_id", "from_commune", "to_commune", "depart_at", "mode"}, {"arrive_at"}, "depart_at"),
    "test": ({"person_id", "commune", "sampled_at", "method", "result"}, set(), "sampled_at"),
    "vaccination": ({"person_id", "commune", "vaccinated_at", "dose", "vaccine"}, set(), "vaccinated_at"),
    "quarantine": ({"person_id", "commune", "start", "place"}, {"end"}, "start"),
    "report": ({"commune", "reported_at", "category", "text"}, {"person_id"}, "reported_at"),
}
ENUMS = {
    ("travel", "mode"): {"road", "rail", "air", "water"},
    ("test", "method"): {"pcr", "rapid"},
    ("test", "result"): {"positive", "negative", "invalid"},
    ("vaccination", "dose"): {1, 2, 3, 4},
    ("quarantine", "place"): {"home", "facility"},
    ("report", "category"): {"gathering", "price", "supplies", "medical", "other"},
}
SYMPTOMS = {"fever", "cough", "breath", "taste_smell", "fatigue"}
VENUE_KINDS = {"market", "school", "factory", "hospital", "office", "transport", "other"}
TIME_FIELDS = {"time_in", "time_out", "declared_at", "depart_at", "arrive_at", "sampled_at", "vaccinated_at"}
TIME_FIELDS |= {"start", "end", "reported_at"}
COMMUNE_FIELDS = {"commune", "from_commune", "to_commune"}
PHONE_FORMS = {
    "0912345678": re.compile(r"0[35789]\d{8}"),
    "+84 912 345 678": re.compile(r"\+84 [35789]\d\d \d{3} \d{3}"),
    "84912345678": re.compile(r"84[35789]\d{8}"),
}
CCCD = re.compile(r"\d{12}")


def read(out: Path, kind: str) -> list[dict]:
    with (out / f"{kind}.ndjson").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def read_venues(out: Path) -> list[dict[str, str]]:
    with (out / "venues.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def commune_codes(edition: str) -> set[str]:
    return set(Unit.objects.filter(edition_id=edition, kind="commune").values_list("code", flat=True))


def at(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    assert t.utcoffset() == timedelta(hours=7), value
    return t


@pytest.fixture
def out(world, tmp_path) -> Path:
    folder = tmp_path / "synth"
    written = generate(folder, scale=SCALE, days=DAYS, edition="VN-2025", seed=7)
    assert set(written) == {"venues", *KINDS}
    for kind in KINDS:
        assert written[kind] == len((folder / f"{kind}.ndjson").read_text(encoding="utf-8").splitlines())
    assert written["venues"] == len(read_venues(folder))
    return folder


def test_every_line_keeps_the_contract(out):
    for kind in KINDS:
        required, optional, sorted_by = CONTRACT[kind]
        records = read(out, kind)
        assert records, f"{kind}.ndjson is empty"
        ids = [r.pop("source_event_id") for r in records]
        assert len(set(ids)) == len(ids), kind
        for r in records:
            assert required <= r.keys() <= required | optional, (kind, r)
            for name in r.keys() & TIME_FIELDS:
                at(r[name])
            for (enum_kind, name), allowed in ENUMS.items():
                if enum_kind == kind:
                    assert r[name] in allowed, (kind, r)
        times = [at(r[sorted_by]) for r in records]
        assert times == sorted(times), f"{kind}.ndjson is not sorted by {sorted_by}"


def test_values_are_plausible(out):
    for r in read(out, "checkin"):
        if "time_out" in r:
            assert at(r["time_out"]) > at(r["time_in"])
    for r in read(out, "travel"):
        assert r["from_commune"] != r["to_commune"]
        if "arrive_at" in r:
            assert at(r["arrive_at"]) > at(r["depart_at"])
    for r in read(out, "quarantine"):
        if "end" in r:
            assert at(r["end"]) > at(r["start"])
    health = read(out, "health")
    assert all(isinstance(r["exposure"], bool) and set(r["symptoms"]) <= SYMPTOMS for r in health)
    assert sum(not r["symptoms"] for r in health) > len(health) / 2  # most people feel fine
    assert all(
        r["vaccine"] in {"AstraZeneca", "Pfizer", "Moderna", "Sinopharm"} for r in read(out, "vaccination")
    )
    assert all(r["text"].strip() for r in read(out, "report"))


def test_doses_increase_per_person(world, tmp_path):
    generate(tmp_path, scale=300, days=40, edition="VN-2021", seed=3)
    doses: dict[str, list[int]] = defaultdict(list)
    for r in read(tmp_path, "vaccination"):
        doses[r["person_id"]].append(r["dose"])
    assert any(len(d) > 1 for d in doses.values())
    assert all(d == sorted(set(d)) for d in doses.values())


def test_communes_and_venues_are_real(out):
    communes = commune_codes("VN-2025")
    for kind in KINDS:
        for r in read(out, kind):
            for name in r.keys() & COMMUNE_FIELDS:
                assert re.fullmatch(r"\d{5}", r[name]) and r[name] in communes, (kind, r)
    venues = read_venues(out)
    assert list(venues[0]) == ["code", "name", "kind", "commune", "lat", "lon", "dwell_minutes"]
    by_code = {v["code"]: v for v in venues}
    assert len(by_code) == len(venues)
    for v in venues:
        assert re.fullmatch(r"V\d\d-\d{6}", v["code"]) and v["name"] and v["kind"] in VENUE_KINDS
        assert v["commune"] in communes and v["code"][1:3] == province_of(v["commune"])
        assert v["dwell_minutes"] == "" or int(v["dwell_minutes"]) > 0
        assert 8 < float(v["lat"]) < 24 and 102 < float(v["lon"]) < 110  # in Vietnam
    assert {r["venue"] for r in read(out, "checkin")} <= by_code.keys()


def province_of(commune: str) -> str:
    return Unit.objects.get(edition_id="VN-2025", code=commune).path.split("/")[2]


def test_the_2021_map_gives_its_own_commune_codes_from_the_start_date(world, tmp_path):
    ticks: list[tuple[str, int, int]] = []
    generate(
        tmp_path,
        scale=200,
        days=1,
        edition="VN-2021",
        start=date(2021, 8, 26),
        progress=lambda *tick: ticks.append(tick),
    )
    communes = commune_codes("VN-2021")
    assert {v["commune"] for v in read_venues(tmp_path)} <= communes
    assert {r["commune"] for r in read(tmp_path, "health")} <= communes
    assert {at(r["time_in"]).date() for r in read(tmp_path, "checkin")} == {date(2021, 8, 26)}
    assert ticks[-1] == ("Sự kiện theo ngày", 1, 1)


def test_people_are_concentrated_and_check_in_near_home(out):
    health = read(out, "health")
    home = {r["person_id"]: r["commune"] for r in health}
    assert len(set(home.values())) < len(home) / 3  # people share communes, not one each
    venue_commune = {v["code"]: v["commune"] for v in read_venues(out)}
    visits = [
        (r["person_id"], venue_commune[r["venue"]]) for r in read(out, "checkin") if r["person_id"] in home
    ]
    near = sum(home[person] == commune for person, commune in visits)
    assert near > len(visits) / 3
    repeat = Counter((r["person_id"], r["venue"]) for r in read(out, "checkin"))
    assert sum(n for n in repeat.values() if n > 1) > sum(repeat.values()) / 3  # favourite venues


def test_check_ins_follow_a_daily_rhythm(out):
    hours = Counter(at(r["time_in"]).hour for r in read(out, "checkin"))
    assert hours[7] > 5 * max(hours[2], 1) and hours[18] > 5 * max(hours[2], 1)
    assert 0.1 < sum("time_out" not in r for r in read(out, "checkin")) / sum(hours.values()) < 0.3


def test_same_seed_same_bytes(out, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    generate(again, scale=SCALE, days=DAYS, edition="VN-2025", seed=7)
    generate(other, scale=SCALE, days=DAYS, edition="VN-2025", seed=8)
    names = ["venues.csv", *(f"{k}.ndjson" for k in KINDS)]
    assert all((out / n).read_bytes() == (again / n).read_bytes() for n in names)
    assert (out / "checkin.ndjson").read_bytes() != (other / "checkin.ndjson").read_bytes()


def test_positive_tests_cluster_around_outbreak_venues(out):
    positives = {r["person_id"] for r in read(out, "test") if r["result"] == "positive"}
    assert len(positives) >= 5
    visitors: dict[str, set[str]] = defaultdict(set)
    for r in read(out, "checkin"):
        visitors[r["venue"]].add(r["person_id"])
    checked_in = positives & set().union(*visitors.values())
    share = {venue: len(people & positives) / len(people) for venue, people in visitors.items()}
    hotspots = sorted(visitors, key=lambda venue: -share[venue])[:5]
    assert share[hotspots[0]] > 2 * len(checked_in) / len(set().union(*visitors.values()))
    # Tracing from a handful of venues finds most cases: people caught it there or from their visitors.
    found = checked_in & set().union(*(visitors[venue] for venue in hotspots))
    assert len(found) >= 0.8 * len(checked_in)
    # Positive people are isolated afterwards, and many contacts are kept at home.
    places = Counter(r["place"] for r in read(out, "quarantine"))
    assert places["facility"] > 0 and places["home"] > 0


def test_person_ids_are_citizen_ids_or_phones_in_varied_forms(out):
    ids = {r["person_id"] for kind in ("checkin", "health", "test") for r in read(out, kind)}
    phones = {i for i in ids if not CCCD.fullmatch(i)}
    assert 0.15 < len(phones) / len(ids) < 0.45
    for form, pattern in PHONE_FORMS.items():
        assert any(pattern.fullmatch(p) for p in phones), f"no phone written like {form}"
    assert all(any(p.fullmatch(i) for p in PHONE_FORMS.values()) or i.startswith("+84") for i in phones)
    assert len({normalise(i) for i in ids}) == len(ids)  # one way of writing per person
    for r in read(out, "health"):
        if CCCD.fullmatch(r["person_id"]):
            assert r["person_id"][:3] == province_of(r["commune"]).zfill(3)


def test_the_ingest_accepts_every_line(out):
    from dieuhanh.warehouse.ingest import ndjson_records
    from dieuhanh.warehouse.services import create_source, import_venues, ingest

    assert not import_venues(actor=None, path=out / "venues.csv", edition="VN-2025").rejected
    source, _ = create_source(actor=None, name="synth", kinds=list(KINDS), edition="VN-2025")
    for kind in KINDS:
        with (out / f"{kind}.ndjson").open("rb") as f:
            summary = ingest(source, kind, ndjson_records(f))
        assert not summary.rejected, (kind, summary.rejected[:3])
        assert summary.accepted == len(read(out, kind))


def test_checkins_only_writes_exactly_n_lines(world, tmp_path):
    path = tmp_path / "bench" / "checkin.ndjson"
    checkins_only(path, n=5_001, venues=40, edition="VN-2025", seed=2)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5_001
    records = [json.loads(line) for line in lines]
    assert len({r["source_event_id"] for r in records}) == 5_001
    venues = {v["code"] for v in read_venues(path.parent)}
    assert len(venues) == 40 and {r["venue"] for r in records} <= venues
    times = [at(r["time_in"]) for r in records]
    assert times == sorted(times)
    assert all(at(r["time_out"]) > at(r["time_in"]) for r in records if "time_out" in r)


def test_an_edition_without_units_is_refused(world, tmp_path):
    with pytest.raises(ValueError, match="no communes"):
        generate(tmp_path, scale=10, days=1, edition="VN-1999")
