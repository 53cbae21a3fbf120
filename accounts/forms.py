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


class ClusterFilterForm(forms.Form):
    dataset = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    run = forms.ChoiceField(required=False, label="Detection run")  # "": each dataset's latest; "all"; a run's id
    signal = forms.ChoiceField(required=False)
    min_size = forms.IntegerField(required=False, min_value=1, max_value=100000, label="Min. size")
    min_score = forms.FloatField(required=False, min_value=0, label="Min. score")
    review = forms.ChoiceField(required=False, choices=[("", "Any"), ("unreviewed", "Unreviewed"),
                                                        ("in_progress", "In progress"), ("reviewed", "Reviewed")])
    sort = forms.ChoiceField(required=False, choices=[("score", "Score"), ("size", "Size"), ("newest", "Newest run"),
                                                      ("label", "Label")])

    def __init__(self, *args: object, user: object, **kwargs: object) -> None:
        from accounts.selectors import SIGNAL_LABELS, datasets_visible, detection_runs_visible

        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [("", "All")] + [(d.pk, d.name) for d in datasets_visible(user=user).order_by("name")]
        self.fields["run"].choices = [("", "Latest of each dataset"), ("all", "Every run")] + [
            (r.pk, f"#{r.pk} · {r.dataset.name if r.dataset else 'all data'} · {r.created_at:%Y-%m-%d %H:%M}")
            for r in detection_runs_visible(user=user).filter(status="succeeded")[:50]]
        self.fields["signal"].choices = [("", "Any")] + sorted(SIGNAL_LABELS.items(), key=lambda kv: kv[1])


class SearchForm(forms.Form):
    q = forms.CharField(max_length=500, label="Search", strip=True)
    kind = forms.ChoiceField(required=False, choices=[("accounts", "Handles and names"), ("posts", "Captions"),
                                                      ("hashtags", "Hashtag"), ("links", "Link")])


class DetectionForm(forms.Form):
    dataset = forms.TypedChoiceField(coerce=int, help_text="The posts and accounts the signals look at")
    signals = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=True)
    window = forms.IntegerField(min_value=1, max_value=30 * 86400, initial=600,
                                help_text="Seconds between two posts that count as together")

    def __init__(self, *args: object, user: object, **kwargs: object) -> None:
        from accounts.coordination.services import SIGNAL_CHOICES
        from accounts.selectors import SIGNAL_LABELS, datasets_visible

        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [(d.pk, d.name) for d in datasets_visible(user=user).order_by("name")]
        labels = {**SIGNAL_LABELS, "engagement_anomalies": "Engagement anomalies (account flags)"}
        self.fields["signals"].choices = [(s, labels.get(s, s)) for s in SIGNAL_CHOICES]
        self.fields["signals"].initial = list(SIGNAL_CHOICES)
