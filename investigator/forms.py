from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from investigator.models import Case, CaseItem, ReviewDecision
from investigator.services import tags_parse


class IdListField(forms.Field):
    """Ids from repeated fields (checkboxes) and/or comma-separated values."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: object) -> list[int]:
        values = value if isinstance(value, list | tuple) else [value or ""]
        try:
            ids = [int(x) for raw in values for x in str(raw).replace(" ", ",").split(",") if x]
        except ValueError as exc:
            raise forms.ValidationError("Ids must be numbers") from exc
        if self.required and not ids:
            raise forms.ValidationError("Choose at least one")
        if len(ids) > 5000:
            raise forms.ValidationError("At most 5,000 at once")
        return ids


class CaseForm(forms.Form):
    title = forms.CharField(max_length=300)
    summary = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class CaseItemsForm(forms.Form):
    """Add items to a case from any page: a case, a kind and one or more ids."""

    case = forms.IntegerField(min_value=1)
    kind = forms.ChoiceField(choices=CaseItem.Kind.choices)
    ids = IdListField()


class AnnotationForm(forms.Form):
    text = forms.CharField(required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 2}), label="Note")
    tags = forms.CharField(required=False, max_length=2000, help_text="DISARM ids (T0049, T0143.002) or words")

    def clean_tags(self) -> list[str]:
        return tags_parse(self.cleaned_data["tags"])


class CaseStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Case.Status.choices)


def people():  # noqa: ANN202 - a QuerySet of users
    """Everyone who can be given or join a case: active, with a role."""
    return get_user_model().objects.filter(is_active=True, groups__isnull=False).distinct().order_by("username")


class CaseAssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = people()


class CaseMemberForm(forms.Form):
    member = forms.ModelChoiceField(queryset=get_user_model().objects.none())

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = people()


class ReviewForm(forms.Form):
    accounts = IdListField()
    state = forms.ChoiceField(choices=ReviewDecision.State.choices)
    reason = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    cluster = forms.IntegerField(required=False)


class ItemsRemoveForm(forms.Form):
    items = IdListField()
