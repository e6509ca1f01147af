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
