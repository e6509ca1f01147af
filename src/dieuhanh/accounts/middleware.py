from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from dieuhanh.units.scoping import below_nation, is_declared


class AreaGuardMiddleware:
    """Refuses pages that are not declared area-aware or public to users below the nation."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith("/api/"):
            return None  # the API guards each operation itself (dieuhanh.api)
        if is_declared(view_func) or not below_nation(request.user):
            return None
        raise PermissionDenied(_("This page is for national users only."))
