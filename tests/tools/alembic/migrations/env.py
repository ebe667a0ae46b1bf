"""Alembic environment: online migrations only, URL from VOUCHDB_SQLALCHEMY_URL."""
import os
import sys
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from models import metadata  # noqa: E402  (the schema at head, for autogenerate and `alembic check`)

url = os.environ["VOUCHDB_SQLALCHEMY_URL"]
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    # transaction_per_migration=False (the default): all revisions run in one transaction, as Alembic
    # does on PostgreSQL with its transactional DDL.
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
