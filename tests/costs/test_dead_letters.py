"""A ledger row the database refuses for its values never holds back the others: it is isolated, kept in the
dead-letter table with the reason, counted, and the flusher goes on. Every refusal here is the database's own (a
trigger, a 64-bit column, PostgreSQL's btree limit), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from pathlib import Path

import pytest

from llm_manager import _json
from llm_manager.costs import Ledger, LedgerRow
from llm_manager.costs.ledger import row_from_json, row_json
from llm_manager.store import Database, apply_migrations, open_database
from tests.costs.test_ledger import row, wait_for
from tests.store.conftest import pg_schema


async def refuse_user(db: Database, user: str) -> None:
    """A trigger that makes the database itself refuse every ledger row of ``user``."""
    async with db.transaction(True) as session:
        if session.dialect.name == "sqlite":
            await session.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON llm_manager_ledger "
                f"WHEN NEW.user_id = '{user}' BEGIN SELECT RAISE(ABORT, 'row refused by trigger'); END"
            )
        else:
            await session.execute(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.user_id = '{user}' THEN RAISE EXCEPTION 'row refused by trigger'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            await session.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON llm_manager_ledger FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


def ids(rows: list[LedgerRow]) -> list[str]:
    return [r.request_id for r in rows]


async def test_one_refused_row_is_set_aside_and_the_other_49_are_written(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await refuse_user(db, "poison")
    ledger = Ledger(db, max_batch=1000)
    rows = [row(i, user="poison" if i == 17 else f"u{i % 3}") for i in range(50)]
    ledger.record(rows)
    with caplog.at_level(logging.ERROR, logger="llm_manager.costs"):
        assert await ledger.flush() == 50  # flush() does not raise: the batch is settled
    assert (ledger.written, ledger.pending, ledger.dead_letters.count) == (49, 0, 1)
    assert ids(await ledger.rows()) == [f"r{i}" for i in range(50) if i != 17]
    [dead] = await ledger.dead_letters.recent()
    assert (dead.request_id, dead.attempt) == ("r17", 1)
    assert "row refused by trigger" in dead.reason
    assert row_from_json(_json.dumps(dead.row)) == rows[17]  # the whole row, exactly
    assert await ledger.dead_letters.total() == 1
    alerts = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(alerts) == 1 and "r17" in alerts[0] and "llm_manager_ledger_dead_letters" in alerts[0]


async def test_several_refused_rows_in_one_batch_and_a_number_past_64_bits(db: Database) -> None:
    await refuse_user(db, "poison")
    ledger = Ledger(db, max_batch=64)
    bad = {3, 4, 40, 63, 64, 99}
    rows = [
        row(i, user="poison") if i in (3, 40, 64) else row(i, prompt_tokens=2**63) if i in bad else row(i)
        for i in range(100)
    ]
    ledger.record(rows)
    assert await ledger.flush() == 100
    assert ids(await ledger.rows()) == [f"r{i}" for i in range(100) if i not in bad]
    dead = await ledger.dead_letters.recent()
    assert sorted(d.request_id for d in dead) == sorted(f"r{i}" for i in bad)
    overflowed = {d.request_id: d for d in dead}["r4"]
    assert row_from_json(_json.dumps(overflowed.row)).prompt_tokens == 2**63  # kept exactly, past 64 bits
    assert (ledger.written, ledger.dead_letters.count, ledger.pending) == (94, 6, 0)


async def test_the_background_flusher_goes_on_after_a_refused_row(db: Database) -> None:
    await refuse_user(db, "poison")
    async with Ledger(db, flush_interval_s=0.05) as ledger:
        ledger.record([row(0, user="poison"), row(1)])
        await wait_for(lambda: ledger.written == 1)
        ledger.record(row(i) for i in range(2, 52))  # the "0 of 50 later rows": all 50 now
        await wait_for(lambda: ledger.written == 51)
        assert ledger.stats()["failing"] is False
    assert len(await ledger.rows()) == 51 and ledger.dead_letters.count == 1


async def test_if_even_the_dead_letter_table_fails_nothing_is_lost(db: Database) -> None:
    """The database is not taking writes at all: the rows not settled stay buffered, as in any outage."""
    await refuse_user(db, "poison")
    async with db.transaction(True) as session:
        await session.execute("DROP TABLE llm_manager_ledger_dead_letters")
        await session.execute("DELETE FROM llm_manager_migrations WHERE name = ?", ("m005_ledger_dead_letters",))
    ledger = Ledger(db, max_batch=10)
    ledger.record(row(i, user="poison" if i == 6 else None) for i in range(10))
    with pytest.raises(Exception, match="llm_manager_ledger_dead_letters"):
        await ledger.flush()
    # The rows before the refused one were committed while it was being isolated; it and the rest wait.
    assert (ledger.written, ledger.pending, ledger.dead_letters.count) == (6, 4, 0)
    await apply_migrations(db)  # the table is back
    assert await ledger.flush() == 4
    assert ids(await ledger.rows()) == [f"r{i}" for i in range(10) if i != 6]
    assert ledger.dead_letters.count == 1 and ledger.written == 9


async def test_an_outage_is_not_mistaken_for_refused_rows(db: Database) -> None:
    async with db.transaction(True) as session:
        await session.execute("DROP TABLE llm_manager_ledger")
        await session.execute("DELETE FROM llm_manager_migrations WHERE name = ?", ("m002_ledger",))
    ledger = Ledger(db)
    ledger.record(row(i) for i in range(5))
    with pytest.raises(Exception, match="llm_manager_ledger"):
        await ledger.flush()
    assert (ledger.pending, ledger.dead_letters.count) == (5, 0)
    assert await ledger.dead_letters.total() == 0


async def test_a_value_too_long_for_postgresqls_btree_index() -> None:
    """The issue's poison row, as the library can still build it (the gateway and Request refuse it at ingress)."""
    with pg_schema() as url:
        db = await open_database(url)
        try:
            ledger = Ledger(db)
            long_user = os.urandom(2500).hex()  # random: PostgreSQL compresses a repeated character below the limit
            ledger.record([row(0), row(1, user=long_user), row(2, project=long_user), row(3)])
            assert await ledger.flush() == 4
            assert ids(await ledger.rows()) == ["r0", "r3"]
            dead = sorted(await ledger.dead_letters.recent(), key=lambda d: d.request_id)
            assert [d.request_id for d in dead] == ["r1", "r2"]
            assert all("index row size" in d.reason for d in dead)
            assert dead[0].row["user"] == long_user
        finally:
            await db.aclose()


def test_rows_round_trip_through_json_exactly() -> None:
    for r in (
        row(1),
        row(2, cost=None, user="ü\x00", project="p", api_key_id="k", cached=True, request_key="sha256:x"),
        row(3, cost=Decimal("0.000000000001"), completion_tokens=2**70, latency_ms=0.125),
    ):
        assert row_from_json(row_json(r)) == r


def test_cli_lists_the_dead_letters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from click.testing import CliRunner

    from llm_manager.cli.main import cli

    url = f"sqlite:///{tmp_path / 'l.db'}"

    async def refuse_one() -> None:
        db = await open_database(url)
        try:
            await refuse_user(db, "poison")
            ledger = Ledger(db)
            ledger.record([row(1), row(2, user="poison")])
            await ledger.flush()
        finally:
            await db.aclose()

    asyncio.run(refuse_one())
    cfg = tmp_path / "llm-manager.yaml"
    cfg.write_text(f"models: {{m: {{provider: simulated, family: gpt}}}}\nstore: {{url: '{url}'}}\n")
    monkeypatch.delenv("LLM_MANAGER_CONFIG", raising=False)
    runner = CliRunner()
    text = runner.invoke(cli, ["--config", str(cfg), "costs", "--dead-letters"])
    assert text.exit_code == 0 and "r2 #1: " in text.stdout and "row refused by trigger" in text.stdout
    data = _json.loads(runner.invoke(cli, ["--config", str(cfg), "costs", "--dead-letters", "--json"]).stdout)
    assert [d["request_id"] for d in data] == ["r2"] and data[0]["row"]["user"] == "poison"
