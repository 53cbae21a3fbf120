from __future__ import annotations

import getpass
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from investigator.roles import ROLES
from investigator.services import user_create


class Command(BaseCommand):
    help = "Create a user with one role: investigator, lead, reviewer or admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument("--password-env", default="", help="read the password from this environment variable")

    def handle(self, *args: object, **options: object) -> None:
        env_name = str(options["password_env"])
        if env_name:
            password = os.environ.get(env_name, "")
            if not password:
                raise CommandError(f"environment variable {env_name} is empty or unset")
        else:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the passwords differ")
        try:
            user = user_create(username=str(options["username"]), password=password, role=str(options["role"]),
                               email=str(options["email"]))
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"Created {user.get_username()} with role {options['role']}.")
