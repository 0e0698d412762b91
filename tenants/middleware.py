"""Which organization a request is for, from its host (django-tenants), with the lookup cached on the
prediction hot path only: every other request reads the organization fresh (its limits, for example)."""
from __future__ import annotations

import re

from django_tenants.middleware.main import TenantMainMiddleware

from mlplatform.hotcache import HotCache

#: The real-time prediction endpoints (models_registry.urls).
HOT_PATH = re.compile(r"^/api/v1/ml/(?:models/\d+|deployments/[^/]+)/predict/?$")

tenants_by_host = HotCache("organizations by host")
PUBLIC = "public"  # the generation the host lookups are cached under (bumped by the platform admin)


class _CachedLookup(TenantMainMiddleware):
    def get_tenant(self, domain_model, hostname):
        # An unknown host raises DoesNotExist, never cached, and is answered as the parent answers it.
        return tenants_by_host.get(PUBLIC, hostname, lambda: TenantMainMiddleware.get_tenant(self, domain_model, hostname))


class OrganizationMiddleware(TenantMainMiddleware):
    def __init__(self, get_response):
        super().__init__(get_response)
        self._cached = _CachedLookup(get_response)  # middleware instances serve every thread: no per-request state

    def process_request(self, request):
        if HOT_PATH.match(request.path_info):
            return self._cached.process_request(request)
        return super().process_request(request)
