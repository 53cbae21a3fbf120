"""What every app's REST API shares: paging, errors from services as 400s, and dates in any offset."""

from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters.fields import IsoDateTimeField
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Pages(PageNumberPagination):
    """?page=N&page_size=M (at most 500)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Services raise Django's ValidationError for bad requests (the pages show it as a message): the
    API answers 400 with the same text, never a server error."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError({"detail": exc.messages})
    return drf_exception_handler(exc, context)


class _UtcDateTimeField(IsoDateTimeField):
    def to_python(self, value: object) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            # PostgreSQL takes offsets up to ±15:59 only; ISO 8601 allows more. Compare in UTC.
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError("That date is out of range") from exc


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date and time in any offset, compared in UTC."""

    field_class = _UtcDateTimeField
