"""The billing module's route through the real app, composed beside the WhatsApp flow:
authenticated like the internal API, scoped to the caller's owner, with its own settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from lagom import Container

from adapters.fastapi.security import TokenSettings, create_access_token
from application.ports.unit_of_work import UnitOfWork
from bootstrap.app import create_app
from bootstrap.cli import migrate
from bootstrap.migrator import alembic_url
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.settings import DEV_ACCOUNT_SID
from tests.conftest import MakeSettings
from tests.contracts.entities import create_module_tables
from tests.modules.billing.domain import Invoice, InvoiceStatus
from tests.modules.billing.module import MODULE as BILLING
from tests.modules.billing.settings import BillingSettings

BASE = "http://testserver"
KEY = "internal-key-for-tests"
SECRET = "a-jwt-secret-that-is-long-enough-for-hs256"
OTHER_OWNER = "AC" + "1" * 32
INVOICE_ID = "01J0000000000000000000INV1"
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Billing:
    client: httpx.AsyncClient
    container: Container

    def bearer(self, owner: str) -> dict[str, str]:
        token = create_access_token(owner, TokenSettings(secret_key=SECRET))
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["memory", "sqlalchemy"])
async def billing(
    request: pytest.FixtureRequest, make_settings: MakeSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Billing]:
    monkeypatch.setenv("BILLING_CURRENCY", "BRL")
    settings = make_settings(database_backend=request.param, queue_backend="memory",
                             twilio_internal_api_key=KEY, secret_key=SECRET)
    if request.param == "sqlalchemy":
        migrate(settings)  # SQLite
        url = alembic_url(settings)
        assert url is not None
        create_module_tables(url)  # the module's own table: no kernel migration has it
    app = create_app(settings, embedded_worker=False, modules=[WHATSAPP, BILLING])
    container: Container = app.state.container
    async with app.router.lifespan_context(app):
        async with container[UnitOfWork] as uow:  # stored where the route will read it
            await uow.repository_for(Invoice).create(Invoice(
                id=INVOICE_ID, owner_id=DEV_ACCOUNT_SID, number="2026-0001",
                amount_cents=12_345, status=InvoiceStatus.OPEN, created_at=CREATED))
            await uow.commit()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Billing(client, container)


async def test_the_owner_reads_its_invoice_in_the_configured_currency(billing: Billing) -> None:
    response = await billing.client.get(f"/api/v1/invoices/{INVOICE_ID}",
                                        headers=billing.bearer(DEV_ACCOUNT_SID))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": INVOICE_ID, "number": "2026-0001", "amount_cents": 12345, "currency": "BRL",
        "status": "open", "created_at": "2026-01-02T03:04:05Z", "paid_at": None,
    }
    assert billing.container[BillingSettings].currency == "BRL"


async def test_the_api_key_is_the_default_owner(billing: Billing) -> None:
    response = await billing.client.get(f"/api/v1/invoices/{INVOICE_ID}",
                                        headers={"X-API-Key": KEY})
    assert response.status_code == 200
    assert response.json()["id"] == INVOICE_ID


async def test_another_owners_invoice_is_not_found(billing: Billing) -> None:
    response = await billing.client.get(f"/api/v1/invoices/{INVOICE_ID}",
                                        headers=billing.bearer(OTHER_OWNER))
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


async def test_unknown_id_is_404_and_a_malformed_one_422(billing: Billing) -> None:
    headers = billing.bearer(DEV_ACCOUNT_SID)
    unknown = await billing.client.get("/api/v1/invoices/" + "0" * 26, headers=headers)
    assert unknown.status_code == 404
    malformed = await billing.client.get("/api/v1/invoices/not-an-id", headers=headers)
    assert malformed.status_code == 422


async def test_without_credentials_the_invoice_is_refused(billing: Billing) -> None:
    response = await billing.client.get(f"/api/v1/invoices/{INVOICE_ID}")
    assert response.status_code == 401
    wrong = await billing.client.get(f"/api/v1/invoices/{INVOICE_ID}",
                                     headers={"X-API-Key": "wrong"})
    assert wrong.status_code == 401


async def test_the_whatsapp_modules_routes_still_answer_beside_billing(billing: Billing) -> None:
    response = await billing.client.get("/api/v1/conversations",
                                        headers=billing.bearer(DEV_ACCOUNT_SID))
    assert response.status_code == 200
    assert response.json()["items"] == []


async def test_the_route_is_in_the_openapi_document(billing: Billing) -> None:
    document = (await billing.client.get("/openapi.json")).json()
    responses = document["paths"]["/api/v1/invoices/{invoice_id}"]["get"]["responses"]
    assert {"200", "401", "404", "422"} <= set(responses)
