"""Every page (and every API read) renders for every role and every kind of object: no 5xx, and each answer of
the class the access policy gives the role. Routes come from the URL configurations (tests/urlwalk.py), objects
from the world (tests/world.py): a new page whose parameter has no provider, or that has no policy entry,
fails here.

`make test PYTEST_ARGS="tests/platform/test_every_page.py -rP"` prints the pages with the objects each was
rendered with."""
from __future__ import annotations

from tests.access_policy import ROLES_FOR_PAGES, expected, routes_with_rules
from tests.urlwalk import fill
from tests.world import PROVIDERS


def test_every_page_renders_for_every_role_and_every_kind_of_object(world, callers):
    failures, listing, requests = [], [], 0
    for route, rule in routes_with_rules(failures):
        if "GET" not in rule.methods:
            continue
        try:
            filled = fill(route, world, PROVIDERS)
        except LookupError as exc:
            failures.append(str(exc))
            continue
        listing.append(f"{route.host} /{route.route}: " + "; ".join(t.objects for t in filled))
        for target in filled:
            for principal, caller in callers[route.host].items():
                if principal.name not in ROLES_FOR_PAGES:
                    continue
                answer = caller.send(route, target.path, "GET")
                requests += 1
                want = expected(rule, principal, "GET")  # never a 5xx, unless the rule declares one (healthz)
                if not want.matches(answer.status, answer.location):
                    failures.append(f"GET {target.path} as {principal.name} ({target.objects}): {answer.status} "
                                    f"{answer.location or answer.error}, expected {want.name}")
    print(f"\n{len(listing)} pages, {requests} requests; each page with the objects it was rendered with:\n"
          + "\n".join(listing))
    assert not failures, f"{len(failures)} of {requests} answers were wrong:\n" + "\n".join(failures)
