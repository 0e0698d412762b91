"""The access policy: for every route of both hosts, which methods it answers and who may call each.

Read by tests/platform/test_access_policy.py (every route, method and caller) and test_every_page.py (every page
and object). A route without an entry fails both: a new URL is covered when it gets its line here.

Expectations are classes of status, not exact codes, so they stay right when throttling or stricter validation
changes which refusal a request meets:
- allowed: 2xx, a redirect that is not to a sign-in page, or (for writes, whose test body is minimal) a 4xx
  about the content or the object's state (400, 409, 413, 415, 422);
- sign in: a page redirects to its sign-in page (with ?next=), an API answers 401;
- forbidden: 403 (a member whose role is too low; an API key on a model outside its scope);
- not allowed: 405, for a method the route does not declare (others may be refused before that: 401/403).
No class holds a 5xx, unless a rule declares it (`ok`: the health check's 503).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from collections.abc import Iterator

from tests.urlwalk import METHODS, ORGANIZATION_URLCONF, PUBLIC_URLCONF, SAFE_METHODS, Route, routes

ANYONE, VIEWER, EDITOR, OWNER, SUPERUSER = "anyone", "viewer", "editor", "owner", "platform superuser"
RANK = {VIEWER: 0, EDITOR: 1, OWNER: 2}


@dataclass(frozen=True)
class Rule:
    kind: str  # "page", "api" or "admin"
    methods: dict[str, str]  # method -> who may call it (a role, ANYONE, SUPERUSER)
    api_key: bool = False  # prediction: an API key scoped to the object's registered model may call it
    ok: frozenset[int] | None = None  # the statuses an allowed call may get, when not the usual classes


def page(ok: set[int] | None = None, **methods: str) -> Rule:
    """A server-rendered page: GET brings HEAD with it."""
    if "GET" in methods:
        methods.setdefault("HEAD", methods["GET"])
    return Rule("page", methods, ok=frozenset(ok) if ok else None)


def api(api_key: bool = False, **methods: str | None) -> Rule:
    """A REST framework view: GET brings HEAD; OPTIONS needs the view's read role (GET's, else viewer) unless
    given (None: the view does not answer it)."""
    if "GET" in methods:
        methods.setdefault("HEAD", methods["GET"])
    methods.setdefault("OPTIONS", methods.get("GET", VIEWER))
    return Rule("api", {m: who for m, who in methods.items() if who is not None}, api_key=api_key)


def admin(who: str) -> Rule:
    """Django's admin: it answers GET and POST on every page and keeps to itself which other methods it takes."""
    return Rule("admin", {"GET": who, "HEAD": who, "POST": who})



ORGANIZATION_POLICY: dict[str, Rule] = {
    # pages
    "dashboard": page(GET=VIEWER),
    "login": page(GET=ANYONE, POST=ANYONE),
    "logout": page(POST=ANYONE),
    "members": page(GET=OWNER, POST=OWNER),
    "members-update": page(POST=OWNER),
    "audit": page(GET=OWNER),
    "datasets": page(GET=VIEWER, POST=EDITOR),
    "datasets-detail": page(GET=VIEWER),
    "datasets-reading": page(POST=EDITOR),  # a column's kind or format (the dataset page's per-column form)
    "datasets-delete": page(POST=EDITOR),
    "datasets-automl": page(POST=EDITOR),
    "training": page(GET=VIEWER),
    "training-new": page(GET=EDITOR, POST=EDITOR),
    "training-detail": page(GET=VIEWER),
    "training-status": page(GET=VIEWER),
    "training-cancel": page(POST=EDITOR),
    "models": page(GET=VIEWER),
    "models-compare": page(GET=VIEWER),
    "models-version": page(GET=VIEWER),
    "models-deploy": page(POST=EDITOR),
    "models-evaluate": page(POST=EDITOR),
    "models-rollback": page(POST=EDITOR),
    "models-monitoring": page(GET=VIEWER),
    "models-batch": page(GET=VIEWER, POST=EDITOR),
    "models-batch-detail": page(GET=VIEWER),
    "models-batch-download": page(GET=VIEWER),
    "api_keys": page(GET=OWNER, POST=OWNER),
    "api_keys-revoke": page(POST=OWNER),
    "healthz": page(GET=ANYONE, ok={200, 503}),  # 503 says the worker is not alive: the point of a health check
    # the organization's admin: owners (who are staff) only, apart from its sign-in and sign-out
    "org_admin:*": admin(OWNER),
    "org_admin:login": admin(ANYONE),
    "org_admin:logout": admin(ANYONE),
    # API
    "api-token": api(POST=ANYONE, OPTIONS=ANYONE),
    "api-me": api(GET=VIEWER),
    "api-members": api(GET=OWNER, POST=OWNER),
    "api-member": api(GET=OWNER, PATCH=OWNER),
    "api-audit": api(GET=OWNER),
    "api-datasets": api(GET=VIEWER, POST=EDITOR),
    "api-dataset": api(GET=VIEWER, PATCH=EDITOR, DELETE=EDITOR),  # PATCH: column kinds and readings
    "api-dataset-preview": api(GET=VIEWER),
    "api-training-start": api(POST=EDITOR),
    "api-jobs": api(GET=VIEWER),
    "api-job": api(GET=VIEWER),
    "api-job-cancel": api(POST=EDITOR),
    "api-catalog": api(GET=VIEWER),
    "api-suggestions": api(POST=VIEWER),
    "api-model-versions": api(GET=VIEWER),
    "api-models-compare": api(POST=VIEWER),
    "api-model-version": api(GET=VIEWER),
    "api-model-deploy": api(POST=EDITOR),
    "api-model-predict": api(POST=VIEWER, api_key=True),
    "api-model-evaluate": api(POST=EDITOR),
    "api-registered-models": api(GET=VIEWER),
    "api-model-rollback": api(POST=EDITOR),
    "api-deployment-predict": api(POST=VIEWER, api_key=True),
    "api-deployment-monitoring": api(GET=VIEWER),
    "api-batch": api(GET=VIEWER, POST=EDITOR),
    "api-batch-detail": api(GET=VIEWER),
    "api-batch-cancel": api(POST=EDITOR),
    "api-batch-download": api(GET=VIEWER),
    "api-keys": api(GET=OWNER, POST=OWNER),
    "api-key-revoke": api(POST=OWNER, OPTIONS=OWNER),
    "api-schema": api(GET=ANYONE, OPTIONS=ANYONE),
    "api-docs": api(GET=ANYONE, OPTIONS=None),
}

PUBLIC_POLICY: dict[str, Rule] = {
    "landing": page(GET=ANYONE),
    "healthz": page(GET=ANYONE, ok={200, 503}),
    "admin:*": admin(SUPERUSER),
    "admin:login": admin(ANYONE),
    "admin:logout": admin(ANYONE),
}


def rule_for(route: Route) -> Rule | None:
    """The route's entry: by its URL name, else its namespace's (the admin sites' generated patterns)."""
    policy = PUBLIC_POLICY if route.host == "public" else ORGANIZATION_POLICY
    return policy.get(route.name) or (policy.get(f"{route.namespace}:*") if route.namespace else None)


def routes_with_rules(failures: list[str]) -> Iterator[tuple[Route, Rule]]:
    """Every route of both hosts with its entry; a route without one is reported in `failures`."""
    for urlconf in (ORGANIZATION_URLCONF, PUBLIC_URLCONF):
        for route in routes(urlconf):
            rule = rule_for(route)
            if rule is None:
                failures.append(f"{route.name} ({route.route}): no entry in tests/access_policy.py")
            else:
                yield route, rule


# --- callers and what they should get ----------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    """Who calls: a member with a role, an API key (in or out of the scope of the objects walked), a member of
    another organization, a platform superuser, or nobody."""

    name: str
    role: str | None = None
    api_key: str | None = None  # "in" or "out"
    foreign: bool = False
    superuser: bool = False


ORGANIZATION_CALLERS = (
    Principal("anonymous"), Principal("viewer", role=VIEWER), Principal("editor", role=EDITOR),
    Principal("owner", role=OWNER), Principal("API key in scope", api_key="in"),
    Principal("API key out of scope", api_key="out"), Principal("owner of another organization", foreign=True),
    Principal("editor deactivated after signing in"),  # their session and token must no longer count
)
PUBLIC_CALLERS = (Principal("anonymous"), Principal("platform superuser", superuser=True))
ROLES_FOR_PAGES = ("anonymous", "viewer", "editor", "owner", "platform superuser")


@dataclass(frozen=True)
class Expected:
    """A class of answers, with the words a failure report uses."""

    name: str
    statuses: frozenset[int] = field(default_factory=frozenset)
    sign_in_redirect: bool = False  # a 302 to a sign-in page counts
    other_redirects: bool = False  # a 3xx anywhere else counts

    def matches(self, status: int, location: str) -> bool:
        if 300 <= status < 400:
            to_sign_in = is_sign_in(location)
            return (self.sign_in_redirect and to_sign_in) or (self.other_redirects and not to_sign_in)
        return status in self.statuses


def is_sign_in(location: str) -> bool:
    path = location.split("://", 1)[-1]
    path = path[path.find("/"):] if "://" in location else path
    return path.startswith(("/login/?next=", "/admin/login/?next="))


SUCCESS = frozenset(range(200, 300))
READ = Expected("allowed", SUCCESS | {409}, other_redirects=True)
WRITE = Expected("allowed (or refused on its content)", SUCCESS | {400, 409, 413, 415, 422}, other_redirects=True)
ADMIN_IN = Expected("let into the admin", frozenset(range(200, 500)) - {401}, other_redirects=True)
PAGE_SIGN_IN = Expected("sent to sign in", sign_in_redirect=True)
API_SIGN_IN = Expected("401", frozenset({401}))
FORBIDDEN = Expected("403", frozenset({403}))
NOT_ALLOWED = Expected("405", frozenset({405}))
REFUSED = Expected("refused (401, 403, 405 or sent to sign in)", frozenset({401, 403, 405}), sign_in_redirect=True)


#: Parameters naming an object of the organization (members and admin rows are numbered alike in every schema).
OBJECT_PARAMETERS = frozenset({"dataset_id", "job_id", "batch_id", "version_id", "model_id", "model_name", "key_id"})
NOT_FOUND = Expected("404", frozenset({404}))


def permits(principal: Principal, who: str) -> bool:
    if who == ANYONE:
        return True
    if who == SUPERUSER:
        return principal.superuser
    return principal.role is not None and RANK[principal.role] >= RANK[who]


def expected(rule: Rule, principal: Principal, method: str) -> Expected:
    """What `principal` should get for `method` on a route with this rule (the objects walked are those of the
    principal's organization, and of an API key's scope for "in")."""
    who = rule.methods.get(method)
    if who is None:
        return NOT_ALLOWED if principal.role == OWNER or principal.superuser else REFUSED
    allowed = ADMIN_IN if rule.kind == "admin" else (
        Expected("allowed", rule.ok) if rule.ok else READ if method in SAFE_METHODS else WRITE)
    if permits(principal, who):
        return allowed
    if rule.api_key and principal.api_key:
        return allowed if principal.api_key == "in" or method == "OPTIONS" else FORBIDDEN
    if principal.role is not None and rule.kind != "admin":
        return FORBIDDEN
    return API_SIGN_IN if rule.kind == "api" else PAGE_SIGN_IN


def methods_to_walk(route: Route, rule: Rule) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(methods the route declares, methods it does not); the admin's undeclared ones are not walked."""
    declared = tuple(m for m in METHODS if m in rule.methods)
    others = () if rule.kind == "admin" else tuple(m for m in METHODS if m not in rule.methods)
    return declared, others
