from datetime import UTC, datetime

from django import template
from django.utils.translation import get_language

from dieuhanh import vnformat

register = template.Library()


@register.filter
def number(value, decimals: int = 2) -> str:
    return vnformat.number(value, (get_language() or "vi")[:2], decimals)


@register.filter
def short_date(value) -> str:
    return vnformat.short_date(value, (get_language() or "vi")[:2]) if value else ""


@register.filter
def vn_datetime(value) -> str:
    return vnformat.short_datetime(value, (get_language() or "vi")[:2]) if value else ""


@register.filter
def epoch_datetime(value: int) -> str:
    """Seconds since 1970 (as tracing computes) shown like any other moment."""
    return vn_datetime(datetime.fromtimestamp(value, UTC))


@register.filter
def graph_radius(count: int) -> float:
    """A group's circle grows with the square root of its people, so that area tracks the count."""
    return round(min(30.0, 6 + 2 * count**0.5), 1)


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key)
