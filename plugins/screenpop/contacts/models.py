"""The built-in contact store's table, `contact`, in the ctid database.

Its own MetaData (not the store's): the plugin creates it when it starts or when a
`ctid contacts` command first runs, and ctid's own tables never depend on it. Portable
types as in `ctid.store.models`: one row per number, the number normalized
(`numbers.normalize`) and unique, times as UTC epoch seconds.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Double, Index, MetaData, String, Table, Text

from ctid.store.models import BigId, LenientJSON

metadata = MetaData()

CONTACT = Table(
    "contact",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False),
    Column("name", Text),
    Column("company", Text),
    Column("level", String(64)),
    Column("vip", Boolean, nullable=False, default=False),
    Column("notes", Text),
    Column("custom", LenientJSON, nullable=True),  # free-form fields a site adds (tier, account, ...)
    Column("created", Double),
    Column("updated", Double),
    Index("ux_contact_number", "number", unique=True),
)

#: Columns a contact is written with (id, created and updated are the store's).
FIELDS = ("number", "name", "company", "level", "vip", "notes", "custom")
