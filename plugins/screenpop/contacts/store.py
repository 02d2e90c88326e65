"""The built-in contact store: create, edit, delete, search, bulk upsert. Blocking (SQLAlchemy);
the event path calls it through `asyncio.to_thread`, request ops from the plugin's thread.

Every write goes through `clean()`, so the CLI, the CSV import and the bus ops accept and
refuse exactly the same things, with the same messages.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Iterator, Mapping

from sqlalchemy import Engine, delete, insert, or_, select, update

from ctid_plugins.screenpop.contacts.models import CONTACT, FIELDS, metadata
from ctid_plugins.screenpop.numbers import NumberPlan, normalize

_TRUE = {"1", "true", "yes", "y", "vip", "x"}
_FALSE = {"0", "false", "no", "n", ""}
_MAX_LEVEL = 64


class ContactError(ValueError):
    """A contact was refused; the message names the field."""


class NotFound(LookupError):
    """No contact has that number."""


def parse_bool(value: Any, key: str = "vip") -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ContactError(f"{key}: expected true/false (yes/no, 1/0), got {value!r}")


def clean(raw: Mapping[str, Any], plan: NumberPlan, *, require_number: bool = True) -> dict[str, Any]:
    """A validated contact (only the keys given); ContactError says which field is wrong."""
    unknown = set(raw) - set(FIELDS)
    if unknown:
        raise ContactError(f"{sorted(unknown)[0]}: unknown field (fields: {', '.join(FIELDS)})")
    out: dict[str, Any] = {}
    if "number" in raw or require_number:
        number, reason = normalize(raw.get("number"), plan)
        if number is None:
            raise ContactError(f"number: {raw.get('number')!r} is not a phone number ({reason})")
        out["number"] = number
    for key in ("name", "company", "level", "notes"):
        if key in raw:
            value = raw[key]
            if value is not None and not isinstance(value, str):
                raise ContactError(f"{key}: expected text, got {value!r}")
            out[key] = (value or "").strip() or None
    if out.get("level") and len(out["level"]) > _MAX_LEVEL:
        raise ContactError(f"level: at most {_MAX_LEVEL} characters")
    if "vip" in raw:
        out["vip"] = parse_bool(raw["vip"])
    if "custom" in raw:
        custom = raw["custom"]
        if isinstance(custom, str):
            try:
                custom = json.loads(custom) if custom.strip() else None
            except ValueError as exc:
                raise ContactError(f"custom: not JSON: {exc}") from None
        if custom is not None and not isinstance(custom, dict):
            raise ContactError(f"custom: expected an object of custom fields, got {custom!r}")
        out["custom"] = custom or None
    return out


def _public(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {k: row[k] for k in (*FIELDS, "created", "updated")}


class ContactStore:
    def __init__(self, engine: Engine, plan: NumberPlan = NumberPlan()) -> None:
        self.engine = engine
        self.plan = plan

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    def number(self, raw: Any) -> str:
        number, reason = normalize(raw, self.plan)
        if number is None:
            raise ContactError(f"number: {raw!r} is not a phone number ({reason})")
        return number

    def get(self, number: str) -> dict[str, Any] | None:
        """The contact of an already normalized number, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(CONTACT).where(CONTACT.c.number == number)).mappings().first()
        return _public(row) if row else None

    def search(self, query: str = "", limit: int = 50) -> list[dict[str, Any]]:
        """Contacts whose number, name or company contains `query` (any case), by number."""
        stmt = select(CONTACT).order_by(CONTACT.c.number).limit(max(1, min(limit, 1000)))
        query = query.strip()
        if query:
            terms = [CONTACT.c.name.icontains(query, autoescape=True), CONTACT.c.company.icontains(query, autoescape=True),
                     CONTACT.c.number.contains(query, autoescape=True)]
            number, _ = normalize(query, self.plan)
            if number is not None and number != query:
                terms.append(CONTACT.c.number.contains(number, autoescape=True))
            stmt = stmt.where(or_(*terms))
        with self.engine.connect() as conn:
            return [_public(r) for r in conn.execute(stmt).mappings()]

    def add(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        fields = clean(raw, self.plan)
        with self.engine.begin() as conn:
            if conn.execute(select(CONTACT.c.id).where(CONTACT.c.number == fields["number"])).first():
                raise ContactError(f"number: {fields['number']} already has a contact (edit it instead)")
            now = time.time()
            conn.execute(insert(CONTACT).values(**{"vip": False, **fields}, created=now, updated=now))
        return self.get(fields["number"])  # type: ignore[return-value]

    def edit(self, number: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the given fields of an existing contact (a new `number` renumbers it)."""
        key = self.number(number)
        fields = clean(changes, self.plan, require_number=False)
        with self.engine.begin() as conn:
            if not conn.execute(select(CONTACT.c.id).where(CONTACT.c.number == key)).first():
                raise NotFound(f"no contact with number {key}")
            if fields:
                conn.execute(update(CONTACT).where(CONTACT.c.number == key).values(**fields, updated=time.time()))
        return self.get(fields.get("number", key))  # type: ignore[return-value]

    def upsert(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the contact or change the given fields; (contact, created)."""
        fields = clean(raw, self.plan)
        inserted, _ = self.upsert_many([fields])
        return self.get(fields["number"]), bool(inserted)  # type: ignore[return-value]

    def upsert_many(self, rows: Iterable[Mapping[str, Any]], chunk: int = 500) -> tuple[int, int]:
        """Write cleaned rows, `chunk` per transaction; (inserted, updated). A later row for
        the same number wins over an earlier one."""
        inserted = updated = 0
        batch: dict[str, Mapping[str, Any]] = {}
        for row in rows:
            batch[row["number"]] = {**batch.get(row["number"], {}), **row}
            if len(batch) >= chunk:
                i, u = self._write(batch)
                inserted, updated, batch = inserted + i, updated + u, {}
        if batch:
            i, u = self._write(batch)
            inserted, updated = inserted + i, updated + u
        return inserted, updated

    def _write(self, batch: dict[str, Mapping[str, Any]]) -> tuple[int, int]:
        now = time.time()
        with self.engine.begin() as conn:
            existing = set(conn.execute(select(CONTACT.c.number).where(CONTACT.c.number.in_(list(batch)))).scalars())
            new = [{"vip": False, "name": None, "company": None, "level": None, "notes": None, "custom": None,
                    **row, "created": now, "updated": now} for n, row in batch.items() if n not in existing]
            if new:
                conn.execute(insert(CONTACT), new)
            for number in existing:
                conn.execute(update(CONTACT).where(CONTACT.c.number == number).values(**batch[number], updated=now))
        return len(new), len(existing)

    def delete(self, number: Any) -> bool:
        key = self.number(number)
        with self.engine.begin() as conn:
            return conn.execute(delete(CONTACT).where(CONTACT.c.number == key)).rowcount > 0

    def all(self, chunk: int = 1000) -> Iterator[dict[str, Any]]:
        """Every contact by number, read in chunks (exports of any size)."""
        last = ""
        while True:
            stmt = select(CONTACT).where(CONTACT.c.number > last).order_by(CONTACT.c.number).limit(chunk)
            with self.engine.connect() as conn:
                rows = [_public(r) for r in conn.execute(stmt).mappings()]
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1]["number"]
