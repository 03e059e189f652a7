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
