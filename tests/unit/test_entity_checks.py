"""Bad entity declarations are refused at composition, naming the module and the culprit."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from application.conversation_entities import CONVERSATIONS, MESSAGES
from application.entities import Column, ColumnType, EntitySpec, Index, UniqueKey
from bootstrap.entity_checks import InvalidEntityDeclaration, check_entities
from tests.modules.billing.persistence import INVOICES


@dataclass
class Note:
    id: str
    text: str
    version: int = 1


def note_spec(**changes: object) -> EntitySpec[Note]:
    spec: EntitySpec[Note] = EntitySpec(
        entity=Note, table="notes",
        columns=(Column("id", ColumnType.STRING, 26), Column("text", ColumnType.TEXT),
                 Column("version", ColumnType.INTEGER)),
        to_row=lambda n: {"id": n.id, "text": n.text, "version": n.version},
        from_row=lambda r: Note(r["id"], r["text"], r["version"]),
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def test_the_kernel_and_example_declarations_pass() -> None:
    check_entities([("whatsapp", CONVERSATIONS), ("whatsapp", MESSAGES),
                    ("billing", INVOICES), ("notes", note_spec())])


@pytest.mark.parametrize("missing", ["id", "version"])
def test_an_entity_without_id_or_version_is_refused(missing: str) -> None:
    spec = note_spec()
    spec = replace(spec, columns=tuple(c for c in spec.columns if c.name != missing))
    with pytest.raises(InvalidEntityDeclaration, match=f"'notes'.*Note.*no '{missing}'"):
        check_entities([("notes", spec)])


def test_two_modules_declaring_one_table_are_refused() -> None:
    clash = replace(note_spec(), table="invoices")
    with pytest.raises(InvalidEntityDeclaration,
                       match="module 'notes' declares table 'invoices', already declared by "
                             "module 'billing'"):
        check_entities([("billing", INVOICES), ("notes", clash)])


def test_one_entity_or_port_declared_twice_is_refused() -> None:
    with pytest.raises(InvalidEntityDeclaration, match=r"entity Message.*'whatsapp'"):
        check_entities([("whatsapp", MESSAGES), ("copy", replace(MESSAGES, table="copies"))])


@pytest.mark.parametrize("bad", [
    {"unique": (UniqueKey(("title",), lambda r: ValueError()),)},
    {"unique": (UniqueKey(("text",), lambda r: ValueError(), where=("state", "x")),)},
    {"indexes": (Index(("text", "author")),)},
])
def test_keys_and_indexes_on_unknown_columns_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidEntityDeclaration, match=r"'notes'.*unknown columns \['"):
        check_entities([("notes", note_spec(**bad))])


def test_a_string_without_length_and_a_column_that_is_no_field_are_refused() -> None:
    spec = note_spec()
    unbounded = replace(spec, columns=(*spec.columns, Column("title", ColumnType.STRING)))
    with pytest.raises(InvalidEntityDeclaration, match="'title' needs a length"):
        check_entities([("notes", unbounded)])
    stray = replace(spec, columns=(*spec.columns, Column("title", ColumnType.TEXT)))
    with pytest.raises(InvalidEntityDeclaration, match="\\['title'\\] are not fields"):
        check_entities([("notes", stray)])


def test_compose_refuses_an_entity_without_version_naming_module_and_entity() -> None:
    from bootstrap.module import CompositionError, Module, compose

    spec = note_spec()
    spec = replace(spec, columns=tuple(c for c in spec.columns if c.name != "version"))
    with pytest.raises(CompositionError, match=r"'notes'.*Note.*no 'version'"):
        compose([Module(name="notes", entities=(spec,))])
