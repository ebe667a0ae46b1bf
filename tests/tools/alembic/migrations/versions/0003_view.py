"""a view over books and authors"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "CREATE VIEW book_with_author AS "
        "SELECT b.id, b.title, b.pages, a.name AS author FROM book b JOIN author a ON a.id = b.author_id"
    )


def downgrade():
    op.execute("DROP VIEW book_with_author")
