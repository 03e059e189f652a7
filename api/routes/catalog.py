from fastapi import APIRouter, Depends, Request

from api.auth import current_actor
from api.errors import ErrorBody

router = APIRouter(prefix="/catalog", tags=["catalog"], dependencies=[Depends(current_actor)],
                   responses={401: {"model": ErrorBody}})


@router.get("/teams", summary="八个行动专班: the action teams")
def teams(request: Request) -> list[dict]:
    return [t.model_dump() for t in request.app.state.service.catalog.teams.values()]


@router.get("/categories", summary="问题类别: categories with their team and time limits")
def categories(request: Request) -> list[dict]:
    return [c.model_dump(mode="json") for c in request.app.state.service.catalog.categories.values()]


@router.get("/districts", summary="区县、园区、街道与社区: the places cases are located in")
def districts(request: Request) -> list[dict]:
    return [d.model_dump() for d in request.app.state.service.catalog.districts.values()]


@router.get("/departments", summary="职能部门: departments that can be summoned by a whistle")
def departments(request: Request) -> list[dict]:
    return [d.model_dump() for d in request.app.state.service.catalog.departments.values()]


@router.get("/whistle-kinds", summary="哨种: whistle kinds with their report-in limits")
def whistle_kinds(request: Request) -> list[dict]:
    return [k.model_dump(mode="json")
            for k in request.app.state.service.catalog.whistle_kinds.values()]


@router.get("/calendar", summary="工作日历: working hours, holidays and make-up working days")
def calendar(request: Request) -> dict:
    return request.app.state.service.catalog.calendar.model_dump(mode="json")
