"""What a case carries into its next run when its history grows long (continue-as-new).

Temporal forgets update ids and signal ids at a continue-as-new, so the recent ones travel with
the state: a request repeated after the case continued is answered with its first outcome
instead of being applied again.
"""

from domain.models import ActionOutcome, CaseState, Model

# Enough for any client's retry window; each costs a few dozen bytes of the next run's input.
RECENT_REQUESTS = 500
# Past this many history events a case continues as new, unless its intake says otherwise;
# well under Temporal's own suggestion (~4,096) and hard limit (51,200).
DEFAULT_HISTORY_EVENT_LIMIT = 2_000


class CaseCarryOver(Model):
    state: CaseState
    seen_signals: list[str] = []
    # Oldest first, at most RECENT_REQUESTS.
    applied: list[ActionOutcome] = []
    # Runs the case has had before this one.
    runs: int = 1
