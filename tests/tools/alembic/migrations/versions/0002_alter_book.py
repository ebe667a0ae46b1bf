"""ALTER TABLE steps: add a column, alter a type, drop a column; a second table with a composite unique"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("book", sa.Column("isbn", sa.String(20), nullable=True))
    op.alter_column("book", "pages", existing_type=sa.Integer, type_=sa.BigInteger)
    op.alter_column("author", "name", existing_type=sa.String(100), type_=sa.String(200))
    op.drop_column("book", "price")
    op.create_table(
        "review",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("book_id", sa.Integer, sa.ForeignKey("book.id"), nullable=False),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("stars", sa.SmallInteger, nullable=False),
        sa.UniqueConstraint("book_id", "reviewer", name="uq_review_book_reviewer"),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name="ck_review_stars"),
    )


def downgrade():
    op.drop_table("review")
    op.add_column("book", sa.Column("price", sa.Numeric(8, 2)))
    op.alter_column("author", "name", existing_type=sa.String(200), type_=sa.String(100))
    op.alter_column("book", "pages", existing_type=sa.BigInteger, type_=sa.Integer)
    op.drop_column("book", "isbn")
