"""Histories recorded before the lean changes (fewer events per action) still replay on
today's workflows: a case opened months ago must keep running after the deploy. Histories
recorded on the lean loop replay too, so a later change is held to both."""

import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from runtime.temporal import data_converter
from workflows.case import CaseWorkflow
from workflows.whistle import WhistleWorkflow

HERE = Path(__file__).parent
FOLDERS = [HERE / "histories_before_lean", HERE / "histories_lean"]
HISTORIES = sorted(path for folder in FOLDERS for path in folder.glob("*.json"))
PATHS = {"ordinary_closed", "failed_verification_closed", "whistled_closed", "whistle_completed",
         "recheck_pending_open", "timers_fired_closed"}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_the_recorded_histories_cover_every_path(folder: Path):
    assert {p.stem for p in folder.glob("*.json")} == PATHS


def test_the_old_histories_cancel_a_timer_at_each_stage_change_and_the_lean_ones_none():
    def cancelled(folder: Path) -> int:
        history = WorkflowHistory.from_json(
            "ordinary_closed", (folder / "ordinary_closed.json").read_text(encoding="utf-8"))
        return sum(e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED for e in history.events)
    assert [cancelled(folder) for folder in FOLDERS] == [5, 0]


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_a_history_recorded_before_still_replays(path: Path):
    text = path.read_text(encoding="utf-8")
    workflow_id = path.stem
    history = WorkflowHistory.from_json(workflow_id, text)
    # A replay that meets a command the history does not hold raises here (nondeterminism).
    result = await Replayer(workflows=[CaseWorkflow, WhistleWorkflow],
                            data_converter=data_converter).replay_workflow(history)
    assert result.replay_failure is None
    assert len(json.loads(text)["events"]) == len(history.events)
