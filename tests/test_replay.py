"""Safe deploys: the current workflow code replays every history recorded from earlier code
(tests/histories, recorded by `python -m tests.histories.record`), and hands the ledger the very
entries the recorded run handed it."""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from ledger.rebuild import _CaptureInterceptor
from runtime.temporal import data_converter
from runtime.worker import WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
FILES = sorted(HISTORIES.glob("*.json"))

# What each recorded case went through, as the ledger saw it (ends with the recorded stage).
EXPECTED_CASES = {
    "ordinary-closed": (["open", "accept", "submit_rectification", "verify", "evaluate",
                         "recheck_due", "recheck"], "closed"),
    "dispatcher-assigned": (["open", "assign", "accept", "submit_rectification", "verify",
                             "evaluate", "bring_recheck_forward", "recheck"], "closed"),
    "dispatcher-rejected": (["open", "reject"], "invalid"),
    "returned-redispatched": (["open", "return", "assign", "accept", "submit_rectification"],
                              "verifying"),
    "failed-verification": (["open", "accept", "submit_rectification", "verify",
                             "submit_rectification", "verify"], "evaluating"),
    "review-upheld": (["open", "accept", "submit_rectification", "verify", "evaluate",
                       "review"], "recheck_pending"),
    "review-reopened": (["open", "accept", "submit_rectification", "verify", "evaluate",
                         "review", "submit_rectification"], "verifying"),
    "rebound": (["open", "accept"] + ["submit_rectification", "verify", "evaluate",
                                      "recheck_due", "recheck"] * 2, "closed"),
    "no-rating": (["open", "accept", "submit_rectification", "verify", "no_response"],
                  "recheck_pending"),
    "whistle": (["open", "accept", "whistle", "whistle_closed", "submit_rectification"],
                "verifying"),
    "whistle-ended": (["open", "accept", "whistle", "whistle_closed", "whistle",
                       "whistle_closed"], "rectifying"),
    "extension-approved": (["open", "accept", "request_extension", "decide_extension", "remind",
                            "overdue", "submit_rectification"], "verifying"),
    "extension-denied": (["open", "accept", "request_extension", "decide_extension"],
                         "rectifying"),
    "overdue-step": (["open", "supplement", "remind", "overdue", "urge", "accept"], "rectifying"),
    # Past its history limit the case continued as new; the second run goes on from seq 9.
    "continued-as-new.run-1": (["open", "accept"] + ["submit_rectification", "verify"] * 3,
                               "rectifying"),
    "continued-as-new.run-2": (["submit_rectification"], "verifying"),
}
# Opened as the API opens cases now: the opening recorded before the start (derived from the
# intake on replay), no lean-loop patch asked for.
EXPECTED_CASES |= {
    "ordinary-closed.ledger-first": EXPECTED_CASES["ordinary-closed"],
    "whistle.ledger-first": EXPECTED_CASES["whistle"],
    "overdue-step.ledger-first": EXPECTED_CASES["overdue-step"],
    # Fewer events an action: more of them before the limit.
    "continued-as-new.ledger-first.run-1": (["open", "accept"] + ["submit_rectification",
                                                                  "verify"] * 4
                                            + ["submit_rectification"], "verifying"),
    "continued-as-new.ledger-first.run-2": (["verify", "submit_rectification"], "verifying"),
}
EXPECTED_WHISTLES = {
    "whistle.whistle-1": "completed",
    "whistle-ended.whistle-1": "ended",
    "whistle-ended.whistle-2": "completed",
    "whistle.ledger-first.whistle-1": "completed",
}


def load(path: Path) -> WorkflowHistory:
    # The file name is the workflow id the replay runs under.
    return WorkflowHistory.from_json(path.stem, path.read_text())


async def replay(history: WorkflowHistory) -> list:
    caught: list = []
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter,
                        interceptors=[_CaptureInterceptor(caught.append)])
    await replayer.replay_workflow(history)
    return caught


def test_every_recorded_history_has_its_expectation():
    assert {p.stem for p in FILES} == set(EXPECTED_CASES) | set(EXPECTED_WHISTLES)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_current_code_replays_the_recorded_history(path: Path):
    entries = await replay(load(path))
    if path.stem in EXPECTED_WHISTLES:
        assert entries[0].event.action == "summon"
        assert entries[-1].state.status == EXPECTED_WHISTLES[path.stem]
        return
    actions, final_stage = EXPECTED_CASES[path.stem]
    assert [e.event.action.value for e in entries] == actions
    first_seq = entries[0].event.seq
    assert first_seq == 1 or ".run-" in path.stem
    assert [e.event.seq for e in entries] == list(range(first_seq, first_seq + len(actions)))
    assert entries[-1].state.stage.value == final_stage


async def test_a_history_the_code_did_not_make_fails_to_replay():
    """The replay is a real check: a history whose recorded commands differ from what the code
    does (here the first timer became a second ledger write) is refused as non-deterministic."""
    raw = json.loads((HISTORIES / "ordinary-closed.json").read_text())
    events = raw["events"]
    timer = next(i for i, e in enumerate(events) if e["eventType"] == "EVENT_TYPE_TIMER_STARTED")
    marker = next(e for e in events if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED")
    events[timer] = {**marker, "eventId": events[timer]["eventId"]}
    with pytest.raises(Exception, match="Fatal error in workflow machines"):
        await replay(WorkflowHistory.from_json("ordinary-closed", json.dumps(raw)))
