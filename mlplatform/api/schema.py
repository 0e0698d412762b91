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
