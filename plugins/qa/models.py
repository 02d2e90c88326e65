"""The QA plugin's tables, in the ctid database beside the store's (portable SQLAlchemy)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Double, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ctid.store.models import KEY, BigId


class Base(DeclarativeBase):
    """Declarative base of the QA tables (their own metadata: created by the plugin)."""

    metadata = MetaData()


class ScorecardVersion(Base):
    """One version of a scorecard; evaluations point at the version they were scored on."""

    __tablename__ = "qa_scorecard"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_qa_scorecard_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(KEY))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(32))
    definition: Mapped[Any] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(Double)


class Sample(Base):
    """A call picked for an evaluator by a sampling run; never the same call twice per evaluator."""

    __tablename__ = "qa_sample"
    __table_args__ = (UniqueConstraint("evaluator", "site", "call_id", name="uq_qa_sample_evaluator_call"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run: Mapped[str] = mapped_column(String(KEY))
    rule: Mapped[str] = mapped_column(String(KEY))
    evaluator: Mapped[str] = mapped_column(String(KEY))
    site: Mapped[str] = mapped_column(String(KEY))
    call_id: Mapped[str] = mapped_column(String(KEY))
    agent: Mapped[str | None] = mapped_column(String(KEY))
    created: Mapped[float] = mapped_column(Double)


class Evaluation(Base):
    """An evaluator's scoring of one call on one scorecard version."""

    __tablename__ = "qa_evaluation"
    __table_args__ = (Index("ix_qa_evaluation_agent_t_call", "agent", "t_call"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(KEY))
    call_id: Mapped[str] = mapped_column(String(KEY))
    recording: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(String(KEY))
    queue: Mapped[str | None] = mapped_column(String(KEY))
    t_call: Mapped[float | None] = mapped_column(Double)  # the call's t_offered: reports group by it
    evaluator: Mapped[str] = mapped_column(String(KEY))
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("qa_scorecard.id"))
    answers: Mapped[Any] = mapped_column(JSON)
    comments: Mapped[Any] = mapped_column(JSON, nullable=True)  # item id -> comment
    score: Mapped[float | None] = mapped_column(Double)
    critical_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    calibration: Mapped[str | None] = mapped_column(String(KEY))  # session name, when scored in one
    status: Mapped[str] = mapped_column(String(16), default="submitted")  # submitted | acknowledged | disputed
    dispute: Mapped[str | None] = mapped_column(Text)
    created: Mapped[float] = mapped_column(Double)
    updated: Mapped[float] = mapped_column(Double)


metadata = Base.metadata
