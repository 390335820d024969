"""Where the database lives: explicit > LABRSS_DB > station [store] path > XDG default."""

from __future__ import annotations

from pathlib import Path

from labrss.store import DB_ENV_VAR, default_db_path, resolve_db_path


def test_default_follows_xdg_data_home() -> None:
    assert default_db_path({"XDG_DATA_HOME": "/data"}) == Path("/data/labrss/lab.db")
    fallback = Path.home() / ".local" / "share" / "labrss" / "lab.db"
    assert default_db_path({}) == fallback
    assert default_db_path({"XDG_DATA_HOME": ""}) == fallback


def test_precedence() -> None:
    env = {DB_ENV_VAR: "/env/lab.db", "XDG_DATA_HOME": "/data"}
    assert resolve_db_path("/x.db", station_path="/st.db", env=env) == Path("/x.db")
    assert resolve_db_path(None, station_path="/st.db", env=env) == Path("/env/lab.db")
    assert resolve_db_path(None, station_path="~/st.db", env={}) == Path.home() / "st.db"
    assert resolve_db_path(env={"XDG_DATA_HOME": "/data"}) == Path("/data/labrss/lab.db")
    assert resolve_db_path("", env={DB_ENV_VAR: ""}) == default_db_path({})
