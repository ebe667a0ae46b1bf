"""Alembic autogenerate against the live database: compare models.py with what SQLAlchemy reflects and
print the differences, one per line. `autogen.py EXPECTED...` exits non-zero unless the differences are
exactly EXPECTED (none given: the database must match the models)."""
import os
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool

from models import metadata


def describe(diff):
    if isinstance(diff, list):  # column modifications come grouped
        return [f"{m[0]} {m[2]}.{m[3]}" for m in diff]
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        return [f"{kind} {diff[1].name}"]
    if kind in ("add_column", "remove_column"):
        return [f"{kind} {diff[2]}.{diff[3].name}"]
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return [f"{kind} {diff[1].name}"]
    if kind in ("add_fk", "remove_fk"):
        return [f"{kind} {diff[1].parent.name}({', '.join(c.name for c in diff[1].columns)})"]
    return [" ".join(str(x) for x in diff)]


engine = create_engine(os.environ["VOUCHDB_SQLALCHEMY_URL"], poolclass=pool.NullPool)
with engine.connect() as conn:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    found = sorted(line for d in compare_metadata(ctx, metadata) for line in describe(d))
for line in found:
    print(line)
expected = sorted(sys.argv[1:])
if found != expected:
    print(f"FAILED: autogenerate found {found}, expected {expected}", file=sys.stderr)
    sys.exit(1)
print("autogenerate ok")
