"""Two real processes: a deploy made in one is served by the other on its next request, although the other
had the old deployment cached and was told nothing but what the organization's marker says."""
import os
import subprocess
import sys

from django.conf import settings
from django_tenants.utils import schema_context

from tests.training.test_worker import database_url_for_subprocess

RECORD = {"x1": 0.5, "x2": 7.5, "color": "red"}

DEPLOY = """
import sys
from django_tenants.utils import schema_context
from models_registry.models import ModelVersion
from models_registry.services import alias_set
with schema_context(sys.argv[1]):
    alias_set(actor="other-process", version=ModelVersion.objects.get(pk=int(sys.argv[2])))
"""


def _deployed_version_id(client) -> int:
    response = client.post("/api/v1/ml/deployments/churn/predict", {"records": [RECORD]}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["model_version"]["id"]


def test_a_deploy_in_another_process_is_served_here_on_the_next_request(acme, trained, committed):
    from models_registry.models import Alias, AliasMove

    def undeploy():
        with schema_context(acme.schema):
            Alias.objects.filter(registered_model__name="churn").delete()
            AliasMove.objects.filter(registered_model__name="churn").delete()

    v1, v2 = trained["churn_v1"]["id"], trained["churn_v2"]["id"]
    editor = acme.client("editor")
    undeploy()  # whatever earlier committed tests left deployed
    try:
        assert editor.post(f"/api/v1/ml/models/{v1}/deploy", {}, format="json").status_code == 200
        assert _deployed_version_id(editor) == v1  # now cached in this process
        env = {**os.environ, "DATABASE_URL": database_url_for_subprocess(),
               "DJANGO_SETTINGS_MODULE": "mlplatform.settings.test"}
        done = subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + DEPLOY, acme.schema, str(v2)],
                              env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        assert _deployed_version_id(editor) == v2
    finally:  # the session's models go back to never deployed, for the tests that follow
        undeploy()
