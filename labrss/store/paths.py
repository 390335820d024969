"""Where the lab's database file lives.

Precedence, highest first: an explicit path (a ``--db`` option, a test's ``tmp_path``), the
``LABRSS_DB`` environment variable, the station file's ``[store] path``, and the per-user
default ``$XDG_DATA_HOME/labrss/lab.db`` (``~/.local/share/labrss/lab.db`` when
``XDG_DATA_HOME`` is unset or empty, as the XDG base-directory specification says).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: Environment variable that overrides the station file and the per-user default.
DB_ENV_VAR = "LABRSS_DB"


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """The per-user default database path (ignores ``LABRSS_DB``)."""
    env = os.environ if env is None else env
    data_home = env.get("XDG_DATA_HOME", "")
    base = Path(data_home) if data_home else Path.home() / ".local" / "share"
    return base / "labrss" / "lab.db"


def resolve_db_path(
    explicit: str | os.PathLike[str] | None = None,
    *,
    station_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The database path to open, by the precedence in the module docstring.

    ``~`` is expanded in every source. The parent directory is not created here
    (`labrss.store.store.Store` creates it when it creates the file).
    """
    env = os.environ if env is None else env
    for candidate in (explicit, env.get(DB_ENV_VAR) or None, station_path):
        if candidate is not None and str(candidate) != "":
            return Path(candidate).expanduser()
    return default_db_path(env)
