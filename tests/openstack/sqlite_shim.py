"""Makes SQLite safe for Heat's threaded engine in the test OpenStack.

Installed into the test virtualenv by install.sh (as heatscaler_sqlite_shim with
a .pth line) and active only when HEATSCALER_SQLITE_SERIALIZE=1, which up.sh sets.

Why: since Heat moved off eventlet its engine runs resources in real threads.
oslo.db opens every SQLite transaction with a deferred BEGIN; a transaction that
reads and then writes must upgrade its lock, and SQLite fails such an upgrade at
once ("database is locked") when another thread is writing, without waiting.
Stacks whose members are nested stacks then fail at random. BEGIN IMMEDIATE
takes the write lock up front, so transactions queue on the busy timeout instead
of failing; WAL lets readers proceed meanwhile. Production Heat uses MySQL or
PostgreSQL and never runs this.
"""

import os


def _install():
    import sqlalchemy
    from oslo_db.sqlalchemy import engines

    def _init_events(engine, sqlite_synchronous=True, sqlite_fk=False, **kw):
        @sqlalchemy.event.listens_for(engine, "connect")
        def _connect(dbapi_con, con_record):
            dbapi_con.isolation_level = None  # we emit BEGIN ourselves, as oslo.db does
            dbapi_con.execute("PRAGMA busy_timeout = 60000")
            dbapi_con.execute("PRAGMA journal_mode = WAL")
            if not sqlite_synchronous:
                dbapi_con.execute("PRAGMA synchronous = OFF")
            if sqlite_fk:
                dbapi_con.execute("PRAGMA foreign_keys = ON")

        @sqlalchemy.event.listens_for(engine, "begin")
        def _begin(conn):
            if "in_transaction" not in conn.info:
                conn.execute(sqlalchemy.text("BEGIN IMMEDIATE"))
                conn.info["in_transaction"] = True

        @sqlalchemy.event.listens_for(engine, "rollback")
        @sqlalchemy.event.listens_for(engine, "commit")
        def _end(conn):
            conn.info.pop("in_transaction", None)


    # Replace (not add to) oslo.db's SQLite set-up, which would emit its own BEGIN first.
    engines._init_events.reg["sqlite"]["*"] = [_init_events]


if os.environ.get("HEATSCALER_SQLITE_SERIALIZE") == "1":
    _install()
