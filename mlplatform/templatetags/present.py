"""`{% load present %}`: numbers and parameters as people read them (mlplatform/present.py)."""
from django import template

from mlplatform import present

register = template.Library()
register.filter("readable", present.readable)
register.filter("parameter", present.parameter)
register.filter("parameter_rows", present.parameter_rows)
