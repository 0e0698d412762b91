"""The walk itself: it reads what the URL configuration holds, and a page it cannot fill or judge fails it."""
import pytest

from tests.access_policy import rule_for
from tests.urlwalk import ORGANIZATION_URLCONF, Route, UnknownParameter, build_path, fill, routes
from tests.world import PROVIDERS, World

NEW = "tests.platform.urls_with_a_new_page"


def test_routes_come_from_the_url_configuration_with_their_parameters():
    found = {r.name: r for r in routes(ORGANIZATION_URLCONF)}
    assert found["models-version"].params == ("version_id",) and not found["models-version"].is_api
    assert found["api-model-predict"].is_api and found["api-model-predict"].api_methods == {"POST", "OPTIONS"}
    assert found["org_admin:auth_user_change"].namespace == "org_admin"
    assert any(r.params == ("url",) and not r.named for r in found.values())  # the admin's catch-all


def test_a_new_page_without_a_provider_or_a_policy_entry_fails_the_walk():
    gadget = next(r for r in routes(NEW) if r.name == "gadget")
    with pytest.raises(UnknownParameter, match="gadget_id"):
        fill(gadget, World(org=None), PROVIDERS)
    assert rule_for(gadget) is None  # the walking tests report "no entry in tests/access_policy.py"


def test_a_provider_without_objects_fails_rather_than_skips():
    version_page = next(r for r in routes(ORGANIZATION_URLCONF) if r.name == "models-version")
    with pytest.raises(LookupError, match="no object"):
        fill(version_page, World(org=None), PROVIDERS)


def test_unnamed_patterns_are_built_from_the_pattern():
    route = Route(urlconf=ORGANIZATION_URLCONF, route="admin/(?P<url>.*)$", name="admin/(?P<url>.*)$",
                  callback=lambda r: None, params=("url",), named=False)
    assert build_path(route, {"url": "no such/page"}) == "/admin/no%20such/page"
