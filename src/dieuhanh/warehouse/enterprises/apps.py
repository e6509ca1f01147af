"""Enterprises and industrial parks: their profile, their venues and their workers' roster (issue 21).

A Django app of its own inside the warehouse layer, so that counts and analytics can ask for an
enterprise's figures."""

from django.apps import AppConfig


class EnterprisesConfig(AppConfig):
    name = "dieuhanh.warehouse.enterprises"
    label = "enterprises"
    verbose_name = "Doanh nghiệp, khu công nghiệp"

    def ready(self) -> None:
        from dieuhanh.units.services import units_loaded

        def follow(sender, report, **kwargs) -> None:
            from dieuhanh.warehouse.enterprises.services import follow_succession

            follow_succession(actor=None)

        units_loaded.connect(follow, dispatch_uid="enterprises.follow_succession", weak=False)
