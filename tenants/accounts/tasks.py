"""Background work of members: forgetting old sign-in counters."""
from mlplatform.jobs import housekeeping_hook

from .throttle import prune


@housekeeping_hook
def sign_in_counters_prune() -> None:
    prune()
