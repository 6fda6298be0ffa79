"""The prediction log's engine settings."""

from storage import log_engine
from storage.log_engine import POSTGRES_CONNECT_ARGS, prediction_log_engine


def _options(monkeypatch, url):
    seen = {}
    monkeypatch.setattr(log_engine, "create_store_engine", lambda u, **kw: seen.update(kw))
    prediction_log_engine(url)
    return seen


def test_postgres_connects_are_bounded_unless_the_url_says_otherwise(monkeypatch):
    options = _options(monkeypatch, "postgresql://postgres@127.0.0.1/test?connect_timeout=2")
    assert options["connect_args"] == {
        "tcp_user_timeout": POSTGRES_CONNECT_ARGS["tcp_user_timeout"]
    }
    assert options["pool_pre_ping"] is False
    assert options["isolation_level"] == "AUTOCOMMIT"


def test_sqlite_keeps_the_store_defaults(monkeypatch):
    assert _options(monkeypatch, "sqlite:///store.db") == {}
