from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from domain import lifecycle, notices
from domain.models import CaseIntake, LedgerEntry
from workflows import search_attributes
from workflows.case import CaseWorkflow


async def start_case(client: Client, intake: CaseIntake,
                     task_queue: str) -> tuple[WorkflowHandle, LedgerEntry]:
    """Start the workflow of a new case; raises WorkflowAlreadyStartedError if its id exists,
    open or closed.

    The opening is a pure function of the intake, so it is known here without a round trip to
    the workflow: its search attributes are set with the start (no upsert event), and the
    ledger entry the workflow's first task writes is returned, for the caller to write at once
    (the same entry twice changes nothing)."""
    state, opened = lifecycle.open_case(intake)
    handle = await client.start_workflow(
        CaseWorkflow.run, intake, id=intake.case_id, task_queue=task_queue,
        search_attributes=search_attributes.of_state(state, with_stage=False),
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    return handle, notices.ledger_entry(opened, state)
