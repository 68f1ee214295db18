"""Trial-database URLs: masking, scrubbed errors, journal files for shared file systems, PostgreSQL connections."""

from __future__ import annotations

import optuna
import pytest

from lightrecipe.errors import UserError
from lightrecipe.reports import sources
from lightrecipe.search.store import storage
from tests.search.helpers import free_port


@pytest.mark.parametrize(
    "url,shown",
    [
        ("postgresql://ann:s3cret@db:5432/sweeps", "postgresql://ann:***@db:5432/sweeps"),
        ("postgresql+psycopg://ann:p%40ss%2Fw@db/sweeps", "postgresql+psycopg://ann:***@db/sweeps"),
        ("mysql+pymysql://ann:a:b@db/x", "mysql+pymysql://ann:***@db/x"),  # ':' inside the password
        ("postgresql://ann@db/sweeps", "postgresql://ann@db/sweeps"),  # no password: nothing to hide
        ("postgresql://db:5432/sweeps", "postgresql://db:5432/sweeps"),  # a port is not a password
        ("sqlite:////abs/trials.db", "sqlite:////abs/trials.db"),
        ("journal:////shared/trials.log", "journal:////shared/trials.log"),
    ],
)
def test_masked_hides_exactly_the_password(url, shown):
    assert storage.masked(url) == shown


def test_scrub_removes_every_form_of_the_password():
    url = "postgresql://ann:p%40ss%2Fw@db/sweeps"
    text = f"could not parse {url}; password 'p@ss/w' rejected; encoded p%40ss%2Fw"
    cleaned = storage.scrub(text, url)
    assert "p@ss/w" not in cleaned and "p%40ss%2Fw" not in cleaned
    assert cleaned.count("***") == 3 and "ann" in cleaned


def test_reports_show_source_urls_with_the_password_masked():
    # The report's own rule and the sweep's are one: reports import it.
    assert sources.resolve("postgresql://ann:s3cret@db/sweeps").label == "postgresql://ann:***@db/sweeps"


def test_an_unreachable_server_is_one_line_without_the_password():
    url = f"postgresql://ann:Tr0ub4dor@127.0.0.1:{free_port()}/sweeps"  # nothing listens there
    with pytest.raises(UserError) as info:
        storage.open_storage(url)
    message = str(info.value)
    assert "Tr0ub4dor" not in message and "ann:***@127.0.0.1" in message
    assert "cannot open the trial database" in message and "\n" not in message


def test_a_journal_file_holds_a_sweep_and_reports_read_it(tmp_path):
    url = f"journal:///{(tmp_path / 'trials.log').as_posix()}"
    study = optuna.create_study(storage=storage.open_storage(url), study_name="tiny/arch", direction="maximize")
    trial = study.ask()
    trial.report(0.25, step=1)
    study.tell(trial, 0.5)
    assert (tmp_path / "trials.log").stat().st_size > 0  # the journal is the file, nothing else is written
    snapshot = sources.open_storage(sources.resolve(url))
    (copied,) = optuna.get_all_study_summaries(snapshot, include_best_trial=False)
    read = optuna.load_study(study_name=copied.study_name, storage=snapshot).trials
    assert [(t.value, t.intermediate_values) for t in read] == [(0.5, {1: 0.25})]


@pytest.mark.parametrize("url,message", [
    ("journal://trials.log", "absolute file"),
    ("journal:///", "absolute file"),
    ("journal:////no/such/folder/trials.log", "does not exist"),
])
def test_bad_journal_urls_are_user_errors(url, message):
    with pytest.raises(UserError, match=message):
        storage.open_storage(url)


@pytest.mark.slow
def test_a_connection_the_server_dropped_is_replaced(postgres_server):
    """pool_pre_ping: a multi-day sweep survives a server restart or a firewall closing idle connections."""
    import psycopg

    url = postgres_server.create_database("prepring")
    trials = storage.open_storage(url)
    study = optuna.create_study(storage=trials, study_name="s")
    study.tell(study.ask(), 1.0)
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:  # what a restart does to the pool
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'prepring'"
        ).fetchone()[0]
    assert killed >= 1  # the pool's idle connection was there and is gone now
    study.tell(study.ask(), 2.0)  # without pre-ping: psycopg.OperationalError on the dead connection
    assert [t.value for t in study.trials] == [1.0, 2.0]
