"""Composing modules: a bad declaration fails at start, naming the module and the culprit;
a deployment's modules come from APP_MODULES; a module's settings have their own prefix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from lagom import Container
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from application.entities import Column, ColumnType, EntitySpec
from application.tasks import PeriodicSpec, TaskSpec
from bootstrap.app import create_app
from bootstrap.cli import main as wta
from bootstrap.container import build_container
from bootstrap.module import Composition, CompositionError, Module, compose
from bootstrap.modules import compose_for, load_modules
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.settings import SettingsError, kernel_env_names
from tests.conftest import MakeSettings
from tests.modules.billing.module import MODULE as BILLING
from tests.modules.billing.settings import BillingSettings


class Noop:
    async def execute(self, request: object = None) -> None:
        return None


async def nothing() -> dict[str, str]:
    return {}


def task(name: str) -> TaskSpec[Any]:
    return TaskSpec(name, dict, Noop)


def table(name: str) -> EntitySpec[Any]:
    return EntitySpec(entity=dict, table=name, columns=(Column("id", ColumnType.TEXT),),
                      to_row=dict, from_row=dict)


def prefixed(prefix: str) -> type[BaseSettings]:
    class Own(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=prefix)

    return Own


def composes(*modules: Module) -> Composition:
    return compose(modules, kernel_env_names=kernel_env_names())


def test_distinct_modules_compose_in_order() -> None:
    composition = composes(WHATSAPP, BILLING, Module("audit", tasks=(task("audit_log"),)))
    assert [m.name for m in composition.modules] == ["whatsapp", "billing", "audit"]
    assert set(composition.tasks) == (
        {spec.name for spec in [*WHATSAPP.tasks, *BILLING.tasks]} | {"audit_log"})
    assert "billing.mark_invoice_paid" in composition.tasks


def test_two_modules_with_one_name_are_refused() -> None:
    with pytest.raises(CompositionError, match="module 'billing' is declared twice"):
        composes(BILLING, Module("billing"))


@pytest.mark.parametrize("name", ["", "has space", "with-dash"])
def test_a_module_name_must_be_an_identifier(name: str) -> None:
    with pytest.raises(CompositionError, match="must be a Python identifier"):
        composes(Module(name))


def test_a_task_name_registered_by_two_modules_names_both() -> None:
    with pytest.raises(CompositionError) as info:
        composes(WHATSAPP, Module("billing", tasks=(task("send_message"),)))
    assert str(info.value) == ("module 'billing': task 'send_message' is registered already "
                               "by module 'whatsapp'")


def test_a_task_name_twice_in_one_module_is_refused() -> None:
    with pytest.raises(CompositionError, match="module 'billing': task 'x' is registered twice"):
        composes(Module("billing", tasks=(task("x"), task("x"))))


def test_a_periodic_name_registered_by_two_modules_is_refused() -> None:
    tick = PeriodicSpec("tick", 60.0, Noop)
    with pytest.raises(CompositionError,
                       match="module 'b': periodic task 'tick' is registered already by "
                             "module 'a'"):
        composes(Module("a", periodic=(tick,)), Module("b", periodic=(tick,)))


def test_one_table_declared_by_two_modules_is_refused() -> None:
    with pytest.raises(CompositionError,
                       match="module 'billing': table 'invoices' is registered already by "
                             "module 'sales'"):
        composes(Module("sales", entities=(table("invoices"),)),
                 Module("billing", entities=(table("invoices"),)))


@pytest.mark.parametrize("prefix", ["DATABASE_", "API_X_", "SECRET_", "OTEL_", "APP_", "D"])
def test_a_settings_prefix_the_kernel_uses_is_refused(prefix: str) -> None:
    with pytest.raises(CompositionError,
                       match=f"module 'billing': settings prefix '{prefix}' is taken by the "
                             "kernel"):
        composes(Module("billing", settings=prefixed(prefix)))


def test_a_settings_prefix_another_module_has_is_refused() -> None:
    with pytest.raises(CompositionError,
                       match="module 'invoicing': settings prefix 'BILLING_EU_' is taken by "
                             "module 'billing'"):
        composes(BILLING, Module("invoicing", settings=prefixed("BILLING_EU_")))


def test_module_settings_without_a_prefix_are_refused() -> None:
    with pytest.raises(CompositionError, match="module 'billing': settings Own has no env_prefix"):
        composes(Module("billing", settings=prefixed("")))


def test_something_else_than_a_module_is_refused() -> None:
    with pytest.raises(CompositionError, match="is not a Module"):
        compose(["billing"])  # type: ignore[list-item]


def test_two_modules_serving_one_route_fail_at_app_start(make_settings: MakeSettings) -> None:
    def clashing(container: Container) -> Sequence[APIRouter]:
        router = APIRouter()

        @router.get("/api/v1/conversations")
        async def mine() -> dict[str, str]:
            return {}

        return [router]

    settings = make_settings(database_backend="memory", queue_backend="memory")
    with pytest.raises(CompositionError,
                       match="module 'copycat': route GET /api/v1/conversations is already "
                             "served by module 'whatsapp'"):
        create_app(settings, embedded_worker=False,
                   modules=[WHATSAPP, Module("copycat", routers=clashing)])


@pytest.mark.parametrize("path", ["/health/live", "/openapi.json"])
def test_a_module_route_on_a_kernel_path_is_refused(
    path: str, make_settings: MakeSettings,
) -> None:
    def kernels(container: Container) -> Sequence[APIRouter]:
        router = APIRouter()
        router.add_api_route(path, nothing, methods=["GET"])
        return [router]

    settings = make_settings(database_backend="memory", queue_backend="memory")
    with pytest.raises(CompositionError, match=f"module 'x': route GET {path} is already "
                                               "served by the kernel"):
        create_app(settings, embedded_worker=False, modules=[Module("x", routers=kernels)])


def test_a_route_on_another_method_of_a_taken_path_is_fine(make_settings: MakeSettings) -> None:
    def deleting(container: Container) -> Sequence[APIRouter]:
        router = APIRouter()
        router.add_api_route("/api/v1/conversations", nothing, methods=["DELETE"])
        return [router]

    settings = make_settings(database_backend="memory", queue_backend="memory")
    app = create_app(settings, embedded_worker=False,
                     modules=[WHATSAPP, Module("x", routers=deleting)])
    assert set(app.openapi()["paths"]["/api/v1/conversations"]) == {"get", "delete"}


# --- APP_MODULES --------------------------------------------------------------------------


def test_app_modules_names_the_modules_every_entry_point_composes(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(
        database_backend="memory", queue_backend="memory",
        app_modules="bootstrap.modules.whatsapp:MODULE, tests.modules.billing.module:MODULE")
    container = build_container(settings)
    assert container[Composition].modules == (WHATSAPP, BILLING)
    assert container[BillingSettings].currency == "EUR"


def test_the_default_is_the_whatsapp_module_alone(make_settings: MakeSettings) -> None:
    container = build_container(make_settings(database_backend="memory", queue_backend="memory"))
    assert container[Composition].modules == (WHATSAPP,)


@pytest.mark.parametrize(("path", "error"), [
    ("tests.modules.nowhere:MODULE", "cannot import 'tests.modules.nowhere'"),
    ("tests.modules.billing.module:MISSING", "has no attribute 'MISSING'"),
    ("tests.modules.billing.module:bind", "is a function, not a bootstrap.module.Module"),
    ("tests.modules.billing.module", "is not a package.module:ATTR path"),
])
def test_a_bad_module_path_is_a_settings_error(path: str, error: str) -> None:
    with pytest.raises(SettingsError, match=error):
        load_modules([path])


def test_a_malformed_app_modules_value_is_refused_with_the_settings(
    make_settings: MakeSettings,
) -> None:
    with pytest.raises(ValueError, match=r"not a package\.module:ATTR path"):
        make_settings(app_modules="bootstrap.modules.whatsapp")


@pytest.mark.parametrize("value", ["tests.modules.nowhere:MODULE",
                                   "bootstrap.modules.whatsapp:MODULE,"
                                   "bootstrap.modules.whatsapp:MODULE"])
def test_the_cli_exits_2_on_bad_modules(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("APP_MODULES", value)
    monkeypatch.setenv("DATABASE_BACKEND", "memory")
    monkeypatch.setenv("QUEUE_BACKEND", "memory")
    assert wta(["dlq", "list"]) == 2
    assert "wta: " in capsys.readouterr().err


# --- a module's own settings ---------------------------------------------------------------


def test_module_settings_are_read_from_their_prefix(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_CURRENCY", "USD")
    composed = compose_for(make_settings(), [WHATSAPP, BILLING])
    assert composed.settings["billing"] == BillingSettings(currency="USD")


def test_an_unknown_variable_under_a_module_prefix_is_refused(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_CURENCY", "USD")
    with pytest.raises(SettingsError, match=r"unknown setting.*BILLING_CURENCY"):
        compose_for(make_settings(), [BILLING])


def test_an_invalid_module_setting_names_the_variable_and_hides_the_value(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_CURRENCY", "secret-looking")
    with pytest.raises(SettingsError) as info:
        compose_for(make_settings(), [BILLING])
    assert "BILLING_CURRENCY" in str(info.value)
    assert "secret-looking" not in str(info.value)


def test_a_module_binding_sees_its_settings_and_the_kernels_ports(
    make_settings: MakeSettings,
) -> None:
    seen: list[object] = []

    class AuditSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="AUDIT_")
        keep_days: int = Field(30, ge=1)

    def bind(container: Container, settings: AuditSettings) -> None:
        seen.append(settings)
        seen.append(container[Composition])

    settings = make_settings(database_backend="memory", queue_backend="memory")
    container = build_container(settings, modules=[Module("audit", settings=AuditSettings,
                                                          bind=bind)])
    assert seen == [AuditSettings(keep_days=30), container[Composition]]
    assert container[AuditSettings].keep_days == 30


def test_module_settings_come_from_dotenv_too_and_typos_there_are_refused(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("BILLING_CURRENCY=JPY\n")
    assert compose_for(make_settings(), [BILLING]).settings["billing"] == BillingSettings(
        currency="JPY")
    (tmp_path / ".env").write_text("BILLING_CURRENCY=JPY\nBILLING_CURRENCYY=USD\n")
    with pytest.raises(SettingsError, match="BILLING_CURRENCYY"):
        compose_for(make_settings(), [BILLING])
