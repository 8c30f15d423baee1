"""A backend whose extra is not installed fails at start with the pip line to run."""

from __future__ import annotations

import sys

import pytest

from bootstrap.cli import main
from bootstrap.extras import MissingExtra, check_extras, needs
from tests.conftest import MakeSettings


def test_the_embedded_defaults_need_no_extra(make_settings: MakeSettings) -> None:
    assert needs(make_settings()) == []
    check_extras(make_settings())


@pytest.mark.parametrize(
    ("overrides", "extra"),
    [
        ({"database_backend": "postgres", "database_url": "host=db dbname=app"}, "postgres"),
        ({"database_url": "postgresql://db/app"}, "postgres"),
        ({"database_backend": "supabase", "supabase_url": "http://sb", "supabase_key": "k"},
         "supabase"),
        ({"queue_backend": "arq"}, "redis"),
        ({"queue_backend": "bullmq"}, "redis"),
        ({"queue_backend": "sqs", "queue_sqs_queue_url": "http://q"}, "sqs"),
        ({"otel_exporter_otlp_endpoint": "http://collector:4318"}, "otel"),
    ],
)
def test_each_backend_names_its_extra(
    make_settings: MakeSettings, overrides: dict[str, str], extra: str
) -> None:
    settings = make_settings(**overrides)
    assert [need.extra for need in needs(settings)] == [extra]
    check_extras(settings)  # the development install has every extra

    with pytest.raises(MissingExtra) as info:
        check_extras(settings, find_spec=lambda name: None)
    assert f"pip install 'whatsapp-core[{extra}]'" in str(info.value)


def test_every_missing_extra_is_in_one_install_line(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules is what the import system takes for "not installed".
    monkeypatch.setitem(sys.modules, "arq", None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    settings = make_settings(database_backend="postgres", database_url="host=db",
                             queue_backend="redis")
    with pytest.raises(MissingExtra) as info:
        check_extras(settings)
    message = str(info.value)
    assert "DATABASE_BACKEND=postgres needs the 'postgres' extra (psycopg2 not installed)" \
        in message
    assert "QUEUE_BACKEND=redis needs the 'redis' extra (arq not installed)" in message
    assert message.endswith("pip install 'whatsapp-core[postgres,redis]'")


def test_a_missing_parent_package_counts_as_missing(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)
    settings = make_settings(otel_exporter_otlp_endpoint="http://collector:4318")
    with pytest.raises(MissingExtra, match=r"whatsapp-core\[otel\]"):
        check_extras(settings)


def test_wta_stops_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "arq", None)
    monkeypatch.setenv("QUEUE_BACKEND", "arq")
    monkeypatch.setenv("API_ENVIRONMENT", "test")
    assert main(["worker"]) == 2
    assert "pip install 'whatsapp-core[redis]'" in capsys.readouterr().err
