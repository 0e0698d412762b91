"""Every page of an organization, read from the URL configuration and filled with the session's objects
(tests/urlwalk.py, tests/world.py), fits a 390 px wide phone: no sideways scroll, nothing cut off."""
import pytest

from tests.access_policy import OWNER, Principal, permits, routes_with_rules
from tests.browser.conftest import sign_in
from tests.browser.test_journey import fits_the_screen
from tests.urlwalk import fill
from tests.world import PROVIDERS

pytestmark = pytest.mark.browser


def test_every_page_fits_a_phone(browser, live_server_port, committed, world):
    failures, pages = [], []
    for route, rule in routes_with_rules(failures):
        if route.host == "organization" and rule.kind == "page" and "GET" in rule.methods \
                and permits(Principal("owner", role=OWNER), rule.methods["GET"]):
            pages += fill(route, world, PROVIDERS, first_only=True)
    assert not failures, failures
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.base = lambda org: f"http://{org.host}:{live_server_port}"
    try:
        sign_in(page, world.org, "owner")
        for target in pages:
            url = page.base(world.org) + target.path
            kind = page.evaluate("async url => (await fetch(url, {method: 'HEAD'})).headers.get('content-type')", url)
            if not (kind or "").startswith("text/html"):
                continue  # the health check and downloads are not pages
            assert page.goto(url).status == 200, target.path
            try:
                fits_the_screen(page, f"{target.path} ({target.objects})")
            except AssertionError as exc:
                failures.append(str(exc))
    finally:
        context.close()
    assert len(pages) > 15 and not failures, "\n".join(failures)
