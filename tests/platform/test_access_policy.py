"""One access-policy test over every route of both hosts (pages, API, admin sites), read from the URL
configurations: every method the route declares, and those it does not, as every kind of caller, each answer
checked against tests/access_policy.py. A route with no entry there, a REST view whose methods differ from its
entry, or a parameter without a provider fails the test.

Writes run with a minimal body inside a savepoint that is rolled back, so a delete, a deploy or a revoke leaves
the walked objects for the next request."""
from __future__ import annotations

from tests.access_policy import NOT_FOUND, OBJECT_PARAMETERS, OWNER, expected, methods_to_walk, routes_with_rules
from tests.urlwalk import fill
from tests.world import PROVIDERS


def test_every_route_answers_every_caller_as_the_policy_says(world, callers):
    failures, requests = [], 0
    for route, rule in routes_with_rules(failures):
        declared, undeclared = methods_to_walk(route, rule)
        if route.api_methods is not None and route.api_methods != set(declared):
            failures.append(f"{route.name}: the view answers {sorted(route.api_methods)}, the policy declares "
                            f"{sorted(declared)}")
        try:
            target = fill(route, world, PROVIDERS, first_only=True)[0]
        except LookupError as exc:
            failures.append(str(exc))
            continue
        for principal, caller in callers[route.host].items():
            # undeclared methods: every caller is refused, and one who may do everything is told 405
            for method in declared + (undeclared if principal.role == OWNER or principal.superuser else undeclared[:1]):
                answer = caller.send(route, target.path, method)
                requests += 1
                want = expected(rule, principal, method)  # never a 5xx, unless the rule declares one (healthz)
                if not want.matches(answer.status, answer.location):
                    failures.append(f"{method} {target.path} as {principal.name}: {answer.status} "
                                    f"{answer.location or answer.error}, expected {want.name}")
        if OBJECT_PARAMETERS & set(route.params) and route.host == "organization":
            # another organization's owner, on its own host, asks for these objects: they do not exist there
            for method in declared:
                if method == "OPTIONS":  # describes the endpoint, reads no object
                    continue
                answer = callers["rival at home"].send(route, target.path, method)
                requests += 1
                if not NOT_FOUND.matches(answer.status, answer.location):
                    failures.append(f"{method} {target.path} as the owner of another organization on its host: "
                                    f"{answer.status} {answer.location or answer.error}, expected 404")
    print(f"\n{requests} requests")
    assert not failures, f"{len(failures)} of {requests} answers broke the policy:\n" + "\n".join(failures)
