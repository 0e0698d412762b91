"""A person signs in on demo.localhost, sees the dashboard, and signs out."""
import pytest

pytestmark = pytest.mark.browser


def test_sign_in_see_dashboard_and_sign_out(page, orgs):
    demo = orgs["demo"]
    page.goto(page.base(demo) + "/")
    # sent to the sign-in page
    assert "/login/" in page.url
    page.fill("#id_username", "editor")
    page.fill("#id_password", "wrong password")
    page.click("button[type=submit]")
    assert "Wrong username or password" in page.text_content(".alert-error")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "editor-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(page.base(demo) + "/")
    assert page.text_content("h1") == "Dashboard"
    assert page.text_content("[data-testid=current-user]") == "editor"
    assert page.text_content("[data-testid=current-role]") == "editor"
    # the stylesheet is served locally and applied
    assert page.evaluate("getComputedStyle(document.querySelector('nav.sidebar')).position") in ("fixed", "sticky")
    page.click("text=Sign out")
    page.wait_for_url("**/login/")
    assert "You are signed out." in page.text_content("ul.messages")
    page.goto(page.base(demo) + "/")
    assert "/login/" in page.url
