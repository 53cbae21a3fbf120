from __future__ import annotations

from django import forms

from accounts.models import ImportRun


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: object, initial: object = None) -> list:
        single = super().clean
        if isinstance(data, (list, tuple)):
            if not data and self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class ImportUploadForm(forms.Form):
    dataset = forms.CharField(max_length=200, help_text="Created if it does not exist yet")
    format = forms.ChoiceField(choices=ImportRun.Format.choices, initial=ImportRun.Format.AUTO)
    files = MultipleFileField(help_text="CSV, JSONL, Instaloader .json.xz files and pictures, or a .zip of a whole export")
