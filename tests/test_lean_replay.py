"""Histories recorded before the lean changes (fewer events per action) still replay on
today's workflows: a case opened months ago must keep running after the deploy."""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.case import CaseWorkflow
from workflows.whistle import WhistleWorkflow

RECORDED = Path(__file__).parent / "histories_before_lean"
HISTORIES = sorted(RECORDED.glob("*.json"))


def test_the_recorded_histories_cover_every_path():
    assert {p.stem for p in HISTORIES} == {
        "ordinary_closed", "failed_verification_closed", "whistled_closed", "whistle_completed",
        "recheck_pending_open", "timers_fired_closed"}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_a_history_recorded_before_still_replays(path: Path):
    text = path.read_text(encoding="utf-8")
    workflow_id = path.stem
    history = WorkflowHistory.from_json(workflow_id, text)
    # A replay that meets a command the history does not hold raises here (nondeterminism).
    result = await Replayer(workflows=[CaseWorkflow, WhistleWorkflow],
                            data_converter=pydantic_data_converter).replay_workflow(history)
    assert result.replay_failure is None
    assert len(json.loads(text)["events"]) == len(history.events)
