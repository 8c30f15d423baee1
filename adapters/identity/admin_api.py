"""The admin API: owners, their numbers and plans, under ``/api/v1/admin``.

Its credential (``X-Admin-Key``) is the deployment's admin key, never an owner's key or
JWT; without a configured key the module adds no route at all. Answers never carry an
auth token: an owner is shown through ``OwnerView``.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from application.identity.store import OwnerStore
from domain.identity.owner import OverQuota, Plan, UnknownOwner

PREFIX = "/api/v1/admin"
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong X-Admin-Key"},
    404: {"description": "no such owner"},
    422: {"description": "invalid field, or a number or account already taken"},
}


class OwnerSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    plan_id: str | None = Field(None, max_length=64)
    answers: bool | None = None
    system_prompt: str | None = Field(None, max_length=20000)
    model: str | None = Field(None, max_length=200)
    reply_language: str | None = Field(None, max_length=35)
    temperature: float | None = Field(None, ge=0, le=2)
    fallback_message: str | None = Field(None, min_length=1, max_length=1600)
    closing_message: str | None = Field(None, min_length=1, max_length=1600)
    vision: bool | None = None  # null: the deployment's LLM_VISION
    enabled: bool | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class OwnerIn(OwnerSettingsIn):
    name: str = Field(min_length=1, max_length=200)
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    # SecretStr: a validation error or a debug dump never shows it.
    auth_token: SecretStr = Field(min_length=1, max_length=200)
    numbers: list[str] = Field(default_factory=list, max_length=50)
    owner_id: str | None = Field(None, pattern=r"^[0-9A-Za-z]{1,64}$")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auth_token: SecretStr = Field(min_length=1, max_length=200)


class NumberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(pattern=r"^(whatsapp:)?\+[1-9][0-9]{6,14}$")


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    assistant: bool = True
    media: bool = True
    monthly_quota: int | None = Field(None, ge=0)
    over_quota: OverQuota = OverQuota.SILENCE
    notice: str | None = Field(None, max_length=1600)


def _plan_out(plan: Plan) -> dict[str, Any]:
    return {"id": plan.id, "name": plan.name, "assistant": plan.assistant,
            "media": plan.media, "monthly_quota": plan.monthly_quota,
            "over_quota": str(plan.over_quota), "notice": plan.notice}


def make_router(store: OwnerStore, admin_key: str) -> APIRouter:
    expected = admin_key.encode()

    def admin(x_admin_key: Annotated[str | None, Header()] = None) -> None:
        if x_admin_key is None or not hmac.compare_digest(x_admin_key.encode(), expected):
            raise HTTPException(401, "missing or wrong X-Admin-Key")

    router = APIRouter(prefix=PREFIX, tags=["admin"], dependencies=[Depends(admin)],
                       responses=_ERRORS)

    async def found(call: Any) -> dict[str, Any]:
        try:
            view = await call
        except UnknownOwner as missing:
            raise HTTPException(404, str(missing)) from None
        result: dict[str, Any] = view.as_dict()
        return result

    @router.get("/owners")
    async def list_owners() -> list[dict[str, Any]]:
        return [view.as_dict() for view in await store.owners()]

    @router.post("/owners", status_code=201)
    async def add_owner(body: OwnerIn) -> dict[str, Any]:
        settings = body.changes()
        for field in ("name", "account_sid", "auth_token", "numbers", "owner_id", "plan_id"):
            settings.pop(field, None)
        view = await store.add(
            name=body.name, account_sid=body.account_sid,
            auth_token=body.auth_token.get_secret_value(), numbers=body.numbers,
            plan_id=body.plan_id, owner_id=body.owner_id, **settings)
        return view.as_dict()

    @router.get("/owners/{owner_id}")
    async def show_owner(owner_id: str) -> dict[str, Any]:
        return await found(store.show(owner_id))

    @router.patch("/owners/{owner_id}")
    async def update_owner(owner_id: str, body: OwnerSettingsIn) -> dict[str, Any]:
        return await found(store.update(owner_id, **body.changes()))

    @router.post("/owners/{owner_id}/disable")
    async def disable_owner(owner_id: str) -> dict[str, Any]:
        return await found(store.disable(owner_id))

    @router.put("/owners/{owner_id}/token")
    async def rotate_token(owner_id: str, body: TokenIn) -> dict[str, Any]:
        return await found(store.rotate_token(owner_id, body.auth_token.get_secret_value()))

    @router.post("/owners/{owner_id}/numbers")
    async def add_number(owner_id: str, body: NumberIn) -> dict[str, Any]:
        return await found(store.add_number(owner_id, body.number))

    @router.delete("/owners/{owner_id}/numbers/{number}")
    async def remove_number(owner_id: str, number: str) -> dict[str, Any]:
        return await found(store.remove_number(owner_id, number))

    @router.get("/plans")
    async def list_plans() -> list[dict[str, Any]]:
        return [_plan_out(plan) for plan in await store.plans()]

    @router.put("/plans/{plan_id}")
    async def put_plan(plan_id: Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,64}$")],
                       body: PlanIn) -> dict[str, Any]:
        plan = Plan(id=plan_id, **body.model_dump())
        return _plan_out(await store.put_plan(plan))

    return router
