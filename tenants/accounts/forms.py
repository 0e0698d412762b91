from django import forms

from mlplatform.forms import PlatformForm

from .models import Role


class LoginForm(PlatformForm):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class MemberCreateForm(PlatformForm):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput, help_text="At least 8 characters, not a common password.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class MemberUpdateForm(PlatformForm):
    role = forms.ChoiceField(choices=Role.choices, required=False)
    is_active = forms.TypedChoiceField(choices=[("true", "Active"), ("false", "Deactivated")], coerce=lambda v: v == "true", required=False, empty_value=None)
