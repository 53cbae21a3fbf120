from django import forms


class ImageLookupForm(forms.Form):
    image = forms.FileField(help_text="A picture to look for: every stored copy and near-copy is listed")
    max_distance = forms.IntegerField(min_value=0, max_value=64, initial=10, label="Max pHash distance")
