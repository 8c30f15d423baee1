"""Zero-config stays zero-config: with the identity module and no TWILIO_* settings, the
embedded default owner is provisioned and a simulated webhook is answered as before."""

from __future__ import annotations

import httpx

from application.identity.store import OwnerStore
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from bootstrap.app import create_app
from bootstrap.cli import migrate
from bootstrap.container import build_container
from bootstrap.modules.identity import MODULE as IDENTITY
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.resources import Resources
from bootstrap.settings import DEV_ACCOUNT_SID
from bootstrap.simulate import PREFIX, inbound_params, sign
from bootstrap.worker import build_runner
from tests.conftest import MakeSettings

BASE = "http://testserver"


async def test_embedded_defaults_provision_one_owner_and_answer_a_simulated_webhook(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings()
    migrate(settings)
    container = build_container(settings, modules=[WHATSAPP, IDENTITY])
    app = create_app(settings, container, embedded_worker=False)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            params = inbound_params(settings, "hi", "whatsapp:+5511988887777", "SM" + "1" * 32)
            url = f"{BASE}{PREFIX}/inbound"
            response = await client.post(f"{PREFIX}/inbound", data=params,
                                         headers={"X-Twilio-Signature": sign(settings, url,
                                                                             params)})
            assert response.status_code == 200, response.text
            await build_runner(container, settings).run(burst=True)  # type: ignore[call-arg]
        [owner] = await container[OwnerStore].owners()
        assert (owner.id, owner.account_sid, owner.numbers) == (
            DEV_ACCOUNT_SID, DEV_ACCOUNT_SID, ("+14155238886",))
        async with container[UnitOfWork] as uow:
            inbound = await uow.repository(MessageRepository).get_by_provider_sid("SM" + "1" * 32)
            assert inbound is not None and inbound.owner_id == DEV_ACCOUNT_SID
            # The embedded account's reply went to the console sender, as without identity.
            reply = await uow.repository(MessageRepository).get_reply_to(inbound.id)
        assert reply is not None and reply.body == "Echo: hi"
        assert reply.provider_sid is not None
    finally:
        await container[Resources].aclose()
