"""Housekeeping shared by every organization (see mlplatform.jobs.housekeeping)."""
from django.conf import settings

from mlplatform.jobs import housekeeping_hook


@housekeeping_hook
def sweep_work_files() -> None:
    """Work files a dead process left in the organization's tmp/ (an upload cut off mid-way, for example)."""
    from mlplatform.filestore import sweep_temp

    sweep_temp(older_than_s=settings.STORAGE_TEMP_MAX_AGE_SECONDS)
