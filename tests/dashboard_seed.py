"""A ledger for the dashboard's tests: cases told step by step (tests.test_stats.Story), placed
in time relative to now so that today's, this month's and the last weeks' figures all have
something in them, with steps past their deadline, a whistle and evidence photos."""

from datetime import datetime, timedelta

from domain.actions import Action
from tests.factories import COMMUNITY, DISPATCHER, INSPECTOR, MUNICIPAL_OFFICER, OFFICER, SUPERVISOR
from tests.test_stats import HOUSING, HOUSING_OFFICER, POWER, POWER_OFFICER, Story, Whistle

DUILONG = dict(district="堆龙德庆区", street="东嘎街道")
LIGHTS = dict(category="street_light_out", **DUILONG)


def _overdue(story: Story) -> Story:
    """Mark the step the case waits on overdue, at its deadline, as the workflow's timer does."""
    clock = story.state.clock
    minutes = int((clock.due_at - story.opened).total_seconds() // 60) + 1
    return story.system(minutes, Action.OVERDUE, step=clock.step, due_at=clock.due_at)


def seed(ledger, catalog, now: datetime, photos: list[str]) -> dict[str, str]:
    """Tell the stories; returns the case ids the tests look at, by what they show."""
    def story(case_id: str, ago: timedelta, **where) -> Story:
        return Story(ledger, catalog, case_id, now - ago, **where)

    # Waiting to be signed for since two days ago.
    _overdue(story("hotline-D1", timedelta(hours=50)))

    # Signed for, whistled (供电 reported in late), rectification now overdue.
    d2 = story("hotline-D2", timedelta(hours=30), **LIGHTS)
    d2.act(30, "accept", MUNICIPAL_OFFICER)
    w1 = Whistle(d2, 60, MUNICIPAL_OFFICER, "tough", "2h", [HOUSING, POWER])
    w1.act(75, "report_in", HOUSING_OFFICER, note="住建局张工已到现场")
    w1.timer(181, "whistle_late", POWER).act(200, "report_in", POWER_OFFICER)
    w1.act(260, "report_done", HOUSING_OFFICER, note="已完成", evidence=photos[:1])
    w1.act(300, "report_done", POWER_OFFICER, note="已完成线路检修").close(300)
    _overdue(d2)

    # The whole way round, photos with the rectification: waiting for the 回头看.
    d3 = story("hotline-D3", timedelta(hours=20), street="吉日街道")
    d3.act(10, "accept", OFFICER, note="已签收，今日安排清运")
    d3.act(120, "submit_rectification", OFFICER, report="已清运垃圾约2吨并消杀",
           evidence=photos)
    d3.verify(200).rate(260, "satisfied")

    story("hotline-D4", timedelta(hours=6)).act(20, "reject", DISPATCHER, reason="重复上报")

    # 回头看 found the problem back: rectifying again, round 2.
    d5 = story("hotline-D5", timedelta(hours=10)).rectify(accept=10, submit=60)
    d5.verify(90).rate(100, "satisfied")
    d5.act(120, "bring_recheck_forward", SUPERVISOR, note="抽查")
    d5.act(150, "recheck", INSPECTOR, result="rebounded", note="垃圾又堆起来了")

    # Closed: consolidated at the 回头看.
    d6 = story("hotline-D6", timedelta(hours=5), **DUILONG).rectify(accept=5, submit=40)
    d6.verify(60).rate(70, "satisfied")
    d6.act(90, "bring_recheck_forward", SUPERVISOR, note="抽查")
    d6.act(120, "recheck", INSPECTOR, result="consolidated")

    # Earlier weeks, for the trend: one late rectification, one unsatisfied and upheld.
    d7 = story("hotline-D7", timedelta(days=16), **LIGHTS).rectify(accept=20, submit=2000)
    d7.verify(2100).rate(2200, "basically_satisfied")
    d8 = story("hotline-D8", timedelta(days=30)).rectify(accept=30, submit=200)
    d8.verify(300).rate(400, "unsatisfied")
    d8.act(500, "review", COMMUNITY, decision="uphold", note="经复核问题已解决")
    # Rectifying for six weeks, long past its deadline: the oldest overdue step.
    _overdue(story("hotline-D9", timedelta(days=45), **LIGHTS).act(60, "accept",
                                                                     MUNICIPAL_OFFICER))
    return {"oldest_overdue": "hotline-D9", "whistled": "hotline-D2",
            "photos": "hotline-D3", "rebounded": "hotline-D5", "closed": "hotline-D6"}
