"""The schema at the head revision, declared as SQLAlchemy metadata: Alembic's autogenerate compares
it with what it reflects from the database (env.py's target_metadata, and autogen.py)."""
import sqlalchemy as sa

metadata = sa.MetaData()

author = sa.Table(
    "author",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(always=False), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(200), nullable=False),
    sa.Column("born", sa.Date),
    sa.UniqueConstraint("email", name="uq_author_email"),
)

book = sa.Table(
    "book",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("author.id", ondelete="CASCADE"), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("pages", sa.BigInteger, server_default="0", nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("isbn", sa.String(20)),
    sa.Index("ix_book_title", "title"),
)

review = sa.Table(
    "review",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("book_id", sa.Integer, sa.ForeignKey("book.id"), nullable=False),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("stars", sa.SmallInteger, nullable=False),
    sa.UniqueConstraint("book_id", "reviewer", name="uq_review_book_reviewer"),
    sa.CheckConstraint("stars BETWEEN 1 AND 5", name="ck_review_stars"),
)
