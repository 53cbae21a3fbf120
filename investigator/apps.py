from django.apps import AppConfig


class InvestigatorConfig(AppConfig):
    name = "investigator"
    verbose_name = "Investigations"

    def ready(self) -> None:
        from investigator import checks  # noqa: F401  (registers system checks)
