"""OpenAPI descriptions of our authentication schemes (loaded by the app config)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "mlplatform.api.authentication.BearerTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <key>` (or `Bearer <key>`) from POST /api/v1/auth/token; valid on its organization only."}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "mlplatform.api.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key mlp_<prefix>.<secret>`, made by an owner; prediction endpoints of its models only."}


# --- Error answers in the schema ------------------------------------------------------------------------
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error of the API: a message a person can act on, and per-field messages.",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["detail"],
}
ERROR_RESPONSES = {
    "400": "Bad input: the body, a field or a query parameter; `errors` names each field.",
    "401": "No valid credentials.",
    "403": "The caller's role or API key does not allow this.",
    "404": "Not in this organization (or no such path).",
    "409": "Conflicts with the current state (a name taken, a job already finished...).",
    "413": "The body or file is larger than the server or the organization's plan accepts.",
    "415": "A body or file of a kind this endpoint does not read.",
    "429": "Too many requests (rate limit) or failed sign-ins; retry after `Retry-After` seconds.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: document the error answers each operation can give, all in the
    one `Error` shape, so clients (and the schema fuzzing in the tests) know every status they may get. A view
    declares any other (`extend_schema(responses={409: None})`, a GET that can conflict) and gets the shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            signed_in = any(requirement for requirement in operation.get("security", []))
            has_body = "requestBody" in operation
            has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
            codes = {"429"}
            codes |= {"400"} if has_body or has_query or path.endswith("/auth/token") else set()
            codes |= {"401", "403"} if signed_in else set()
            codes |= {"404"} if "{" in path else set()
            codes |= {"409"} if method != "get" else set()
            codes |= {"413", "415"} if has_body else set()
            responses = operation.setdefault("responses", {})
            codes |= {code for code in responses if code in ERROR_RESPONSES}  # declared by the view itself
            for code in sorted(codes):
                if "content" not in responses.get(code, {"content": None}):
                    del responses[code]  # declared without a body: it has the error body
                answer = {"description": ERROR_RESPONSES[code], "content": {"application/json": {"schema": reference}}}
                if code == "429":
                    answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "required": True,
                                                         "description": "seconds to wait"}}
                responses.setdefault(code, answer)
    return result
