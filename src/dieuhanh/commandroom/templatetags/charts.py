"""`{% room_charts unit %}`: the charts panel (commandroom/_charts.html) of a unit, on the room, the unit
page and the wall; the ranking only for a unit with units below it."""

from django import template

from dieuhanh.commandroom.charts import CHARTS
from dieuhanh.units.models import Unit

register = template.Library()


@register.inclusion_tag("commandroom/_charts.html")
def room_charts(unit: Unit, wall: bool = False) -> dict:
    names = [n for n in CHARTS if n != "rank" or wall or unit.children.exists()]
    return {"unit": unit, "charts": names, "wall": wall}
