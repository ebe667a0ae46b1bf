"""authors and books: identity and serial keys, a foreign key, a unique constraint, an index"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "author",
        sa.Column("id", sa.Integer, sa.Identity(always=False), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("born", sa.Date),
        sa.UniqueConstraint("email", name="uq_author_email"),
    )
    op.create_table(
        "book",
        sa.Column("id", sa.Integer, primary_key=True),  # SERIAL
        sa.Column("author_id", sa.Integer, sa.ForeignKey("author.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("pages", sa.Integer, server_default="0", nullable=False),
        sa.Column("price", sa.Numeric(8, 2)),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.create_index("ix_book_title", "book", ["title"])


def downgrade():
    op.drop_index("ix_book_title", table_name="book")
    op.drop_table("book")
    op.drop_table("author")
