"""The demo's data quality: a data set with rules, violations found, one handed over as a task."""

from __future__ import annotations

from dieuhanh.accounts.services import create_user
from dieuhanh.demo import load_demo_quality
from dieuhanh.directives.models import Task
from dieuhanh.indicators.periods import parse
from dieuhanh.indicators.quality import outliers
from dieuhanh.indicators.quality.models import ValidationRule, Violation


def test_the_demo_has_rules_violations_a_task_and_an_outlier(world):
    create_user(
        actor=None, username="lanhdao", password=None, grants=[(world.nation, "leader")], validate=False
    )
    (line,) = load_demo_quality()
    assert "2 quy tắc" in line
    assert ValidationRule.objects.count() == 2
    broken = Violation.objects.filter(state="open")
    assert {v.rule.code for v in broken} == {"online_within_received", "onestop_staff_present"}
    task = Task.objects.get()
    assert Violation.objects.get(task_id=task.pk).unit == task.owner
    found = outliers.flags(world.commune_b, parse("202410"), ["dossiers_received"])
    assert "dossiers_received" in found
    assert load_demo_quality() == ["Kiểm tra số liệu: đã có (giữ nguyên)"]
