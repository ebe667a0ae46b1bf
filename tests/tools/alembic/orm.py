"""SQLAlchemy 2 ORM work against the schema the Alembic migrations built (run by tests/tools.rs)."""
import datetime
import os
import sys

from sqlalchemy import BigInteger, Date, ForeignKey, Identity, SmallInteger, String, Text, create_engine, func, inspect, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    born: Mapped[datetime.date | None] = mapped_column(Date)
    books: Mapped[list["Book"]] = relationship(back_populates="author", cascade="all, delete-orphan")


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    title: Mapped[str] = mapped_column(String(200))
    pages: Mapped[int] = mapped_column(BigInteger, server_default="0")
    isbn: Mapped[str | None] = mapped_column(String(20))
    created: Mapped[datetime.datetime | None] = mapped_column(server_default=func.now())
    author: Mapped[Author] = relationship(back_populates="books")
    reviews: Mapped[list["Review"]] = relationship(back_populates="book", cascade="all, delete-orphan")


class Review(Base):
    __tablename__ = "review"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("book.id"))
    reviewer: Mapped[str] = mapped_column(Text)
    stars: Mapped[int] = mapped_column(SmallInteger)
    book: Mapped[Book] = relationship(back_populates="reviews")


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


engine = create_engine(os.environ["VOUCHDB_SQLALCHEMY_URL"])

# Introspection, as Alembic's autogenerate and SQLAlchemy's reflection do it.
insp = inspect(engine)
tables = set(insp.get_table_names())
check({"author", "book", "review", "alembic_version"} <= tables, f"tables {tables}")
check("book_with_author" in insp.get_view_names(), f"views {insp.get_view_names()}")
cols = {c["name"]: c for c in insp.get_columns("book")}
check(set(cols) == {"id", "author_id", "title", "pages", "isbn", "created"}, f"book columns {sorted(cols)}")
check(isinstance(cols["pages"]["type"], BigInteger), f"pages type {cols['pages']['type']!r}")
fks = insp.get_foreign_keys("book")
check(len(fks) == 1 and fks[0]["referred_table"] == "author", f"book fks {fks}")
check(any(i["name"] == "ix_book_title" for i in insp.get_indexes("book")), f"indexes {insp.get_indexes('book')}")
uqs = {u["name"]: u["column_names"] for u in insp.get_unique_constraints("review")}
check(uqs.get("uq_review_book_reviewer") == ["book_id", "reviewer"], f"unique constraints {uqs}")
check(insp.get_pk_constraint("author")["constrained_columns"] == ["id"], "author pk")

with Session(engine) as s, s.begin():
    ann = Author(name="Ann Author", email="ann@example.com", born=datetime.date(1970, 1, 2))
    bob = Author(name="Bob Writer", email="bob@example.com")
    ann.books = [Book(title="First", pages=120, isbn="111"), Book(title="Second", pages=300)]
    bob.books = [Book(title="Third")]
    s.add_all([ann, bob])
    s.flush()
    check(ann.id is not None and ann.books[0].id is not None, "generated keys")
    ann.books[0].reviews.append(Review(reviewer="carol", stars=5))
    ann.books[0].reviews.append(Review(reviewer="dave", stars=3))

with Session(engine) as s, s.begin():
    rows = s.execute(select(Author.name, func.count(Book.id)).join(Book).group_by(Author.name).order_by(Author.name)).all()
    check([tuple(r) for r in rows] == [("Ann Author", 2), ("Bob Writer", 1)], f"books per author {rows}")
    b = s.scalars(select(Book).where(Book.title == "First")).one()
    check(b.pages == 120 and b.author.email == "ann@example.com" and b.created is not None, "book First")
    check(sorted(r.stars for r in b.reviews) == [3, 5], "reviews")
    b.pages = 150
    third = s.scalars(select(Book).where(Book.title == "Third")).one()
    check(third.pages == 0, "server default pages")
    s.delete(third)
    s.flush()  # a text() query is not ORM-enabled, so it does not autoflush
    view = s.execute(text("SELECT title, author FROM book_with_author ORDER BY title")).all()
    check([tuple(r) for r in view] == [("First", "Ann Author"), ("Second", "Ann Author")], f"view {view}")

# A unique violation rolls the transaction back and leaves the session usable.
from sqlalchemy.exc import IntegrityError

try:
    with Session(engine) as s, s.begin():
        s.add(Author(name="Dup", email="ann@example.com"))
except IntegrityError as e:
    check(getattr(e.orig, "sqlstate", None) == "23505", f"sqlstate {e.orig!r}")
else:
    check(False, "duplicate email accepted")

with Session(engine) as s:
    check(s.scalar(select(Book.pages).where(Book.title == "First")) == 150, "update committed")
    check(s.scalar(select(func.count()).select_from(Book)) == 2, "delete committed")
    check(s.scalar(select(func.count()).select_from(Author)) == 2, "authors")
print("orm ok")
