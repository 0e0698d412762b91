"""Every URL pattern of the platform, read from the URL configurations, with its parameters filled from providers.

Two tests walk these routes: every page rendered for every kind of object and role (tests/platform/
test_every_page.py), and every route and method checked against the access policy (tests/platform/
test_access_policy.py). Nothing here lists URLs: a new pattern is walked as soon as it is in a URLconf, and a
pattern whose parameter has no provider, or which has no policy entry, fails both tests until it gets one.

A provider is a function ``(world, route, chosen) -> [Sample]``: the objects of one kind to fill a parameter
with (``chosen`` holds the parameters filled before it, so an admin object follows its content type).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.urls import URLPattern, URLResolver, get_resolver, reverse

ORGANIZATION_URLCONF = "mlplatform.urls"
PUBLIC_URLCONF = "mlplatform.urls_public"
#: Every method a client can send; each route declares the ones it allows.
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Route:
    """One URL pattern: where it is, what answers it and which parameters it takes."""

    urlconf: str
    route: str  # the joined pattern, e.g. "models/versions/<int:version_id>/"
    name: str  # "namespace:name", or the pattern itself when the pattern has no name
    callback: Callable = field(compare=False, repr=False)
    params: tuple[str, ...] = ()
    named: bool = True
    namespace: str = ""

    @property
    def is_api(self) -> bool:
        """Answered by a Django REST framework view (its own authentication, 401 rather than a sign-in page)."""
        return getattr(self.callback, "cls", None) is not None

    @property
    def api_methods(self) -> frozenset[str] | None:
        """The methods a REST framework view implements (HEAD with GET, as Django adds it), else None."""
        view = getattr(self.callback, "cls", None)
        if view is None:
            return None
        names = getattr(self.callback, "view_initkwargs", {}).get("http_method_names", view.http_method_names)
        methods = {m.upper() for m in names if hasattr(view, m)}
        return frozenset(methods | ({"HEAD"} if "GET" in methods else set()))

    @property
    def host(self) -> str:
        return "public" if self.urlconf == PUBLIC_URLCONF else "organization"


def routes(urlconf: str) -> list[Route]:
    """Every pattern of ``urlconf``, included ones too, in the order Django tries them."""
    return list(_walk(get_resolver(urlconf).url_patterns, urlconf, "", ""))


def _walk(patterns, urlconf: str, prefix: str, namespace: str) -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, urlconf, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            params = tuple(dict.fromkeys(re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route)))
            params = tuple(a or b for a, b in params)
            yield Route(urlconf=urlconf, route=route, name=f"{namespace}{pattern.name}" if pattern.name else route,
                        callback=pattern.callback, params=params, named=bool(pattern.name),
                        namespace=namespace.rstrip(":"))


@dataclass(frozen=True)
class Sample:
    """One object to fill a parameter with, and what kind of object it is (shown in the page list)."""

    label: str
    value: Any


@dataclass(frozen=True)
class Filled:
    """A route with every parameter filled: the path to request and what it was filled with."""

    route: Route
    path: str
    samples: tuple[Sample, ...] = ()

    @property
    def objects(self) -> str:
        return ", ".join(s.label for s in self.samples) or "no parameters"


class UnknownParameter(LookupError):
    """A URL parameter no provider knows: a new kind of object the walk cannot yet render pages for."""


Provider = Callable[[Any, Route, dict], list[Sample]]


def fill(route: Route, world: Any, providers: dict[str, Provider], *, first_only: bool = False) -> list[Filled]:
    """Every combination of the providers' samples for the route's parameters (the first of each with
    ``first_only``). Raises UnknownParameter for a parameter no provider knows, and LookupError when a provider
    has no object for the route (a page the walk could not render is a failure, not a skip)."""
    unknown = [p for p in route.params if p not in providers]
    if unknown:
        raise UnknownParameter(f"{route.name} ({route.route}): no provider for parameter(s) {', '.join(unknown)}; "
                               f"add one to the providers of tests/urlwalk.py users")
    combinations: list[tuple[Sample, ...]] = [()]
    for param in route.params:
        grown = []
        for chosen in combinations:
            found = providers[param](world, route, dict(zip(route.params, (s.value for s in chosen))))
            if not found:
                raise LookupError(f"{route.name}: the provider of '{param}' has no object to fill it with")
            grown += [chosen + (s,) for s in (found[:1] if first_only else found)]
        combinations = grown
    return [Filled(route=route, path=build_path(route, dict(zip(route.params, (s.value for s in samples)))),
                   samples=samples) for samples in combinations]


def build_path(route: Route, kwargs: dict) -> str:
    """The path of a route with these parameters: Django's reverse for a named pattern, else the pattern with
    each parameter put in its place (quoted)."""
    if route.named:
        return reverse(route.name, urlconf=route.urlconf, kwargs=kwargs)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: quote(str(kwargs[m.group(1)])), route.route)  # regex groups first
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: quote(str(kwargs[m.group(1)])), path)
    return "/" + path.replace("^", "").replace("$", "")



# --- calling routes ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    location: str = ""
    error: str = ""  # what the view raised, when it raised


@dataclass
class Caller:
    """Sends requests as one principal on one host: its session cookie for pages, its `Authorization` header
    (token or API key) for the API. Each request gets a fresh client with the saved cookies, so one that signs
    out or is refused never changes who the next request is."""

    host: str
    cookies: dict[str, str] = field(default_factory=dict)
    authorization: str = ""

    def send(self, route: Route, path: str, method: str) -> Answer:
        """One request inside a savepoint that is rolled back: writes (deploy, delete, revoke...) leave the
        walked objects as they were for the next request."""
        from django.db import transaction
        from django.test import Client

        client = Client(HTTP_HOST=self.host)
        for name, value in self.cookies.items():
            client.cookies[name] = value
        headers = {"HTTP_AUTHORIZATION": self.authorization} if self.authorization and route.is_api else {}
        with transaction.atomic():
            try:
                response = _request(client, route, path, method, headers)
                answer = Answer(response.status_code, response.get("Location", ""))
                if response.streaming:  # read to the end: the test client then closes the file it streams
                    for _ in response.streaming_content:
                        pass
            except Exception as exc:  # the test client re-raises what the view raised: a 500 to report
                answer = Answer(500, error=f"{exc.__class__.__name__}: {exc}")
            transaction.set_rollback(True)
        return answer


def _request(client, route: Route, path: str, method: str, headers: dict):
    """A minimal request: no body for reads, `{}` for writes (as JSON when the API view reads JSON, else as a
    form)."""
    if method in SAFE_METHODS or method == "DELETE":
        return client.generic(method, path, **headers)
    if route.is_api and _reads_json(route):
        return client.generic(method, path, data="{}", content_type="application/json", **headers)
    if method == "POST":
        return client.post(path, {}, **headers)
    return client.generic(method, path, data="", content_type="application/x-www-form-urlencoded", **headers)


def _reads_json(route: Route) -> bool:
    from rest_framework.parsers import JSONParser

    view = route.callback.cls
    parsers = getattr(view, "parser_classes", None) or []
    return any(issubclass(p, JSONParser) for p in parsers)


def signed_in_cookies(host: str, path: str, username: str, password: str) -> dict[str, str]:
    """The cookies of a session opened through a sign-in form (the organization's, or the admin's)."""
    from django.test import Client

    client = Client(HTTP_HOST=host)
    response = client.post(path, {"username": username, "password": password})
    assert response.status_code == 302, f"sign-in of {username} on {host}{path}: {response.status_code}"
    return {name: morsel.value for name, morsel in client.cookies.items()}
