import pytest
from django.core.exceptions import ImproperlyConfigured

from investigator.env import database_from_url, env_bool, env_int, env_list, env_url


def test_env_bool_parses_and_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    assert env_bool("FLAG") is True
    monkeypatch.setenv("FLAG", "off")
    assert env_bool("FLAG", True) is False
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG")


def test_env_int_enforces_bounds(monkeypatch):
    monkeypatch.delenv("N", raising=False)
    assert env_int("N", 5) == 5
    monkeypatch.setenv("N", "12")
    assert env_int("N", 5, maximum=20) == 12
    monkeypatch.setenv("N", "x12")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int("N", 5)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("N", 5, minimum=1)


def test_env_list_and_url(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example , b.example,, ")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.setenv("BROKER", "redis://127.0.0.1:6379/0")
    assert env_url("BROKER", schemes={"redis"}) == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("BROKER", "sqs://queue")
    with pytest.raises(ImproperlyConfigured, match="BROKER must start with one of redis"):
        env_url("BROKER", schemes={"redis"})


def test_database_url_is_parsed_and_must_be_postgres():
    config = database_from_url("postgresql://inv%40stig:p%3Ass@db.example:6543/cases?sslmode=require")
    assert config["USER"] == "inv@stig"
    assert config["PASSWORD"] == "p:ss"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", "6543", "cases")
    assert config["OPTIONS"] == {"sslmode": "require"}
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL"):
        database_from_url("mysql://root@localhost/cases")
    with pytest.raises(ImproperlyConfigured, match="name a database"):
        database_from_url("postgresql://localhost:5432")
