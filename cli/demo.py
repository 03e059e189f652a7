"""`bihuan demo`: open a handful of Lhasa cases through the HTTP API and drive each down a
different path of the lifecycle, so a newcomer sees every stage in the API, the ledger and the
Temporal UI within a minute of `make run`."""

import asyncio
import random
import time
import unicodedata
import uuid

import httpx

from api.auth import mint_token
from config.settings import Settings
from domain.actions import ACTION_LABELS, Action
from domain.models import Actor
from domain.stages import STAGE_LABELS, Stage

HOTLINE = {"id": "hotline-12345", "name": "12345热线平台", "role": "hotline"}
DISPATCHER = {"id": "d001", "name": "次仁", "role": "dispatcher"}
INSPECTOR = {"id": "i003", "name": "卓玛", "role": "inspector"}
RECHECKER = {"id": "i007", "name": "尼玛", "role": "inspector"}
SUPERVISOR = {"id": "s001", "name": "领导小组办公室", "role": "supervisor"}
GRID_WORKER = {"id": "g0451", "name": "网格员拉姆", "role": "reporter"}
CITIZEN = {"id": "ssp-13908901234", "name": "随手拍市民", "role": "reporter"}
PATROL_LEADER = {"id": "p012", "name": "包保领导巡查组", "role": "reporter"}
DEVICE = {"id": "yjh-jzxl-0032", "name": "格桑林卡社区一键呼终端", "role": "reporter"}
OFFICERS = {"环境卫生": ("o017", "扎西"), "市政设施": ("o101", "平措"), "道路交通": ("o205", "次旦"),
            "规范市场": ("o311", "格桑"), "安全生产": ("o402", "达瓦"), "城乡绿化": ("o508", "索朗"),
            "遗留问题": ("o603", "边巴"), "城乡风貌": ("o707", "普布")}
HOUSING_DEPT = {"id": "dep-zj-01", "name": "张工", "role": "department",
                "department": "拉萨市住房和城乡建设局"}
POWER_DEPT = {"id": "dep-gd-01", "name": "李工", "role": "department",
              "department": "国网拉萨供电公司"}
EVIDENCE = "https://img.example.cn/rectify"


class DemoFailed(Exception):
    """The API answered something the demo did not expect; the message carries its body."""


def officer(team: str) -> dict:
    # An officer may act only on cases of their own team, so every step picks one by the case.
    oid, name = OFFICERS[team]
    return {"id": oid, "name": name, "role": "officer", "team": team}


def community_staff(case: dict) -> dict:
    loc = case["location"]
    return {"id": "c021", "name": "央金", "role": "community",
            "district": loc["district"], "street": loc.get("street"),
            "community": loc.get("community")}


def place(district: str, street: str, address: str, community: str | None = None) -> dict:
    return {"district": district, "street": street, "community": community, "address": address}


def _pad(text: str, width: int) -> str:
    # Chinese characters take two columns; pad by display width so the lines stay aligned.
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - shown, 1)


class Demo:
    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self.client, self.settings = client, settings
        self.tokens: dict[tuple, str] = {}
        # Ticket numbers shaped like 12345 work orders, unique per run so reruns open new cases.
        self.stamp = time.strftime("%Y%m%d%H%M%S") + f"{random.randrange(1000):03d}"
        self.serial = 0
        self.opened: list[str] = []
        self.named: dict[str, dict] = {}

    def ticket(self, prefix: str = "") -> str:
        self.serial += 1
        return f"{prefix}{self.stamp}{self.serial:02d}"

    def auth(self, actor: dict) -> dict[str, str]:
        # The API takes the acting person from a signed token only; the demo signs its own with
        # the same key as the system it talks to (the development key unless configured).
        key = tuple(sorted(actor.items()))
        if key not in self.tokens:
            self.tokens[key] = mint_token(self.settings, Actor(**actor))
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    async def post(self, path: str, body: dict, actor: dict,
                   expect: tuple[int, ...]) -> tuple[int, dict]:
        resp = await self.client.post(path, json=body,
                                      headers={"Idempotency-Key": uuid.uuid4().hex,
                                               **self.auth(actor)})
        if resp.status_code not in expect:
            raise DemoFailed(f"POST {path} answered HTTP {resp.status_code} "
                             f"(expected {'/'.join(map(str, expect))}):\n{resp.text}")
        return resp.status_code, resp.json()

    async def get(self, path: str) -> dict:
        resp = await self.client.get(path, headers=self.auth(SUPERVISOR))
        if resp.status_code != 200:
            raise DemoFailed(f"GET {path} answered HTTP {resp.status_code}:\n{resp.text}")
        return resp.json()

    def say(self, case_id: str, action: str, stages: str, detail: str = "") -> None:
        print(f"  {_pad(case_id, 34)}{_pad(action, 18)}{_pad(stages, 24)}{detail}".rstrip())

    async def open(self, source: str, actor: dict, description: str, location: dict, *,
                   category: str | None, external_id: str | None = None, expect: int = 201,
                   **extra) -> dict:
        body = {"source": source, "external_id": external_id, "category": category,
                "description": description, "location": location, **extra}
        status, case = await self.post("/cases", body, actor, (expect,))
        if case["case_id"] not in self.opened:
            self.opened.append(case["case_id"])
        where = location["district"] + (location.get("street") or "")
        routed = f"→ {case['team']}" if case["team"] else "(类别未匹配，待派单员处理)"
        known = " · 工单已存在，返回原案件" if status == 200 else ""
        self.say(case["case_id"], ACTION_LABELS[Action.OPEN], f"→ {case['stage_label']}",
                 f"{category or '无类别'} {routed} · {where} (HTTP {status}{known})")
        return case

    async def act(self, case: dict, action: Action, actor: dict, **fields) -> dict:
        _, res = await self.post(f"/cases/{case['case_id']}/actions/{action.value}",
                                 fields, actor, (200,))
        after = res["case"]
        who = actor["name"] + (f"·{actor['team']}" if actor.get("team") else "")
        self.say(case["case_id"], ACTION_LABELS[action],
                 f"{STAGE_LABELS[Stage(res['from_stage'])]} → {after['stage_label']}",
                 f"第{after['round']}轮 · {who} ({action.value})")
        return after

    async def note(self, case: dict, action: Action, actor: dict, **fields) -> None:
        # Supplements and 督办 are signals: accepted at once, the stage stays where it is.
        await self.post(f"/cases/{case['case_id']}/actions/{action.value}",
                        fields, actor, (202,))
        self.say(case["case_id"], ACTION_LABELS[action], f"{case['stage_label']} (阶段不变)",
                 f"{actor['name']} ({action.value})")

    async def rectify_and_verify(self, case: dict, passed: bool = True, report: str = "") -> dict:
        case = await self.act(case, Action.SUBMIT_RECTIFICATION, officer(case["team"]),
                              report=report or "已按要求整改完毕",
                              evidence=[f"{EVIDENCE}/{case['case_id']}-r{case['round']}.jpg"])
        return await self.act(case, Action.VERIFY, INSPECTOR, passed=passed,
                              note="现场核查已整改到位" if passed else "现场核查仍未整改到位")


async def closed_end_to_end(d: Demo) -> None:
    case = await d.open("hotline", HOTLINE, "吉日巷口垃圾堆积三天无人清运，气味很大",
                        place("城关区", "吉日街道", "吉日巷12号旁", "吉日社区"),
                        category="暴露垃圾", external_id=d.ticket(),
                        reporter={"name": "王女士", "phone": "13800000000"})
    d.named["garbage"] = case
    case = await d.act(case, Action.ACCEPT, officer(case["team"]), note="已签收，今日安排清运")
    case = await d.rectify_and_verify(case, report="已清运垃圾约2吨并消杀")
    case = await d.act(case, Action.EVALUATE, HOTLINE, rating="满意", comment="处理及时")
    case = await d.act(case, Action.BRING_RECHECK_FORWARD, SUPERVISOR, note="雪顿节前抽查")
    await d.act(case, Action.RECHECK, RECHECKER, result="consolidated", note="回访现场，未反弹")


async def failed_verification(d: Demo) -> None:
    case = await d.open("grid", GRID_WORKER, "东嘎路口雨水井井盖破损下陷，夜间易伤人",
                        place("堆龙德庆区", "东嘎街道", "东嘎路与109国道交叉口"),
                        category="井盖缺失或破损", external_id=d.ticket("WG"), urgency="urgent")
    case = await d.act(case, Action.ACCEPT, officer(case["team"]))
    case = await d.rectify_and_verify(case, passed=False, report="已设置临时围挡")
    await d.rectify_and_verify(case, report="已更换防坠井盖并调平")


async def returned_and_redispatched(d: Demo) -> None:
    case = await d.open("patrol", PATROL_LEADER, "德庆镇农贸市场门口路边长期占道，摊位后停放一辆废弃面包车",
                        place("达孜区", "德庆镇", "德庆镇农贸市场东门"),
                        category="占道经营", external_id=d.ticket("BB"))
    case = await d.act(case, Action.RETURN, officer(case["team"]),
                       reason="现场无摊贩，系长期停放的废弃车辆，属道路交通专班")
    case = await d.act(case, Action.ASSIGN, DISPATCHER, team="道路交通", category="僵尸车",
                       note="改派道路交通专班处置僵尸车")
    await d.act(case, Action.ACCEPT, officer(case["team"]), note="已签收，联系交警拖移")


async def unknown_category(d: Demo) -> None:
    case = await d.open("device", DEVICE, "一键呼：3号楼楼道堆满纸箱和电动车，楼梯口通行困难",
                        place("城关区", "金珠西路街道", "格桑林卡小区3号楼", "格桑林卡社区"),
                        category="楼道堆物", external_id=d.ticket("YJH"))
    await d.act(case, Action.ASSIGN, DISPATCHER, team="安全生产", category="消防通道堵塞",
                note="楼道堆物堵塞疏散通道，按消防通道堵塞派安全生产专班")


async def duplicate(d: Demo) -> None:
    original = d.named["garbage"]
    case = await d.open("snapshot", CITIZEN, "吉日巷口一大堆垃圾没人管",
                        place("城关区", "吉日街道", "吉日巷口", "吉日社区"),
                        category="暴露垃圾", external_id=d.ticket("SSP"),
                        attachments=["https://img.example.cn/ssp/jiri-lane.jpg"])
    await d.act(case, Action.REJECT, DISPATCHER, reason="与12345工单重复上报",
                duplicate_of=original["case_id"])


async def unsatisfied_reopened(d: Demo) -> None:
    case = await d.open("hotline", HOTLINE, "木如社区一家茶馆每晚音响放到凌晨，严重扰民",
                        place("城关区", "吉崩岗街道", "林廓北路木如巷口", "木如社区"),
                        category="噪音扰民", external_id=d.ticket(),
                        reporter={"name": "次仁卓嘎", "phone": "13989001122"})
    case = await d.act(case, Action.ACCEPT, officer(case["team"]))
    case = await d.rectify_and_verify(case, report="已约谈店主并要求22点后关闭音响")
    case = await d.act(case, Action.EVALUATE, HOTLINE, rating="不满意", comment="昨晚照旧吵到一点")
    await d.act(case, Action.REVIEW, community_staff(case), decision="reopen",
                note="入户核实噪音仍存在，退回专班重新整改")


async def recheck_pending(d: Demo) -> None:
    case = await d.open("snapshot", CITIZEN, "柳梧大桥南侧连续五盏路灯不亮",
                        place("柳梧新区", "柳梧街道", "柳梧大桥南桥头"),
                        category="路灯不亮", external_id=d.ticket("SSP"),
                        attachments=["https://img.example.cn/ssp/liuwu-lights.jpg"])
    case = await d.act(case, Action.ACCEPT, officer(case["team"]))
    case = await d.rectify_and_verify(case, report="已更换损坏镇流器5套")
    await d.act(case, Action.EVALUATE, DISPATCHER, rating="基本满意", comment="回访上报人：已亮")


async def accepted_and_urged(d: Demo) -> None:
    case = await d.open("hotline", HOTLINE, "仙足岛小区门口下雨后积水没过脚踝",
                        place("城关区", "两岛街道", "仙足岛小区南门", "仙足岛社区"),
                        category="排水不畅积水", external_id=d.ticket(),
                        reporter={"name": "李先生", "phone": "13708905566"})
    case = await d.act(case, Action.ACCEPT, officer(case["team"]), note="已签收，安排疏通")
    await d.note(case, Action.SUPPLEMENT, HOTLINE, content="市民补充：积水处井盖也有松动")
    await d.note(case, Action.URGE, SUPERVISOR, note="汛期重点问题，请于今日18:00前完成疏通")


async def hotline_redelivery(d: Demo) -> None:
    body = dict(description="林廓东路公厕无人保洁，异味很大", category="公厕脏乱",
                location=place("城关区", "吉日街道", "林廓东路公厕", "河坝林社区"),
                external_id=d.ticket(), reporter={"name": "旺姆", "phone": "13618907788"})
    first = await d.open("hotline", HOTLINE, expect=201, **body)
    again = await d.open("hotline", HOTLINE, expect=200, **body)
    if again["case_id"] != first["case_id"]:
        raise DemoFailed(f"the redelivered ticket opened {again['case_id']}, "
                         f"not {first['case_id']}")


async def whistle_and_extension(d: Demo) -> None:
    case = await d.open("grid", GRID_WORKER, "冲赛康巷口私搭彩钢棚，棚顶压着供电线路",
                        place("城关区", "八廓街道", "冲赛康巷口", "冲赛康社区"),
                        category="私搭乱建", external_id=d.ticket("WG"))
    team = officer(case["team"])
    case = await d.act(case, Action.ACCEPT, team, note="已签收，现场勘查")
    case = await d.act(case, Action.REQUEST_EXTENSION, team, extend_by="2wd",
                       reason="需供电公司配合停电后方可拆除")
    case = await d.act(case, Action.DECIDE_EXTENSION, SUPERVISOR, approved=True,
                       note="同意延期两个工作日")
    case = await d.act(case, Action.WHISTLE, community_staff(case), kind="tough",
                       departments=["市住建局", "拉萨供电公司"],
                       reason="违建压线，需住建、供电部门联合处置")
    path = f"/cases/{case['case_id']}/whistles/1"
    for dept, who in ((HOUSING_DEPT, "report_in"), (POWER_DEPT, "report_in"),
                      (HOUSING_DEPT, "report_done"), (POWER_DEPT, "report_done")):
        body = {"note": "已到现场"} if who == "report_in" else {"note": "已完成本部门处置"}
        _, res = await d.post(f"{path}/{who}", body, dept, (200,))
        label = ACTION_LABELS[Action(who)]
        d.say(case["case_id"], label, f"第1次吹哨 {res['whistle']['status']}",
              f"{dept['name']}·{dept['department']}")
    for _ in range(50):  # the whistle hands the case back to the team as soon as it ends
        case = await d.get(f"/cases/{case['case_id']}")
        if case["stage"] == Stage.RECTIFYING:
            break
        await asyncio.sleep(0.1)
    await d.rectify_and_verify(case, report="违建已拆除，线路已迁改")


SCENARIOS = [
    ("全流程办结：签收 → 整改 → 核查 → 满意 → 抽查回头看 → 办结", closed_end_to_end),
    ("核查不通过，第二轮整改后通过", failed_verification),
    ("退单后由派单员改派到正确专班", returned_and_redispatched),
    ("类别未知，待派单员定类派单", unknown_category),
    ("重复上报，作废并关联原案件", duplicate),
    ("回访不满意，社区复核后重新整改", unsatisfied_reopened),
    ("办结待回头看", recheck_pending),
    ("签收整改中：热线补充诉求与督办", accepted_and_urged),
    ("同一热线工单推送两次：首次201，再次200，同一案件", hotline_redelivery),
    ("吹哨报到：延期获批，社区吹哨，住建、供电部门报到并办结后核查", whistle_and_extension),
]


async def summarize(d: Demo, api_url: str, ui_url: str) -> None:
    print("\n结果 (final stages):")
    for case_id in d.opened:
        case = await d.get(f"/cases/{case_id}")
        notes = (f" 补充{case['supplements']}" if case["supplements"] else "") + \
                (f" 督办{case['urges']}" if case["urges"] else "")
        d.say(case_id, case["stage_label"], case["stage"],
              f"{case['team'] or '-'} · 第{case['round']}轮{notes}")
    closed = d.named["garbage"]["case_id"]
    print(f"\n办理过程 {closed}:")
    for entry in (await d.get(f"/cases/{closed}/history"))["events"]:
        print(f"  {entry['summary']}")
    print(f"\nAPI docs:     {api_url}/docs\n"
          f"Case history: {api_url}/cases/{closed}/history\n"
          f"Temporal UI:  {ui_url}")


async def run_demo(api_url: str, settings: Settings) -> int:
    api_url = api_url.rstrip("/")
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        try:
            (await client.get("/healthz", timeout=5)).raise_for_status()
        except httpx.HTTPError as err:
            print(f"The bihuan API at {api_url} is not reachable ({err.__class__.__name__}); "
                  "start the system with `make run` first.")
            return 2
        demo = Demo(client, settings)
        try:
            for title, scenario in SCENARIOS:
                print(f"\n▶ {title}")
                await scenario(demo)
            await summarize(demo, api_url, settings.temporal_ui_url)
        except DemoFailed as err:
            print(f"\nDemo stopped: {err}")
            return 1
        except httpx.HTTPError as err:
            print(f"\nDemo stopped: the API at {api_url} stopped answering ({err!r}).")
            return 1
    return 0
