"""Django ORM work against the migrated schema (run by tests/tools.rs after `manage.py migrate`)."""
import decimal
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
django.setup()

from django.db import IntegrityError, connection, transaction  # noqa: E402
from django.db.models import Count, F  # noqa: E402

from library.models import Author, Publisher, Title  # noqa: E402


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


with transaction.atomic():
    acme = Publisher.objects.create(name="Acme", country="GB", website="https://acme.example")
    zed = Publisher.objects.create(name="Zed", country="NZ")
    check(acme.pk is not None and zed.pk > acme.pk, "generated keys")
    Title.objects.bulk_create(
        [
            Title(publisher=acme, name="Rust in Depth", price=decimal.Decimal("39.90")),
            Title(publisher=acme, name="Rust in Depth", edition=2, price=decimal.Decimal("44.00")),
            Title(publisher=zed, name="Ledgers", edition=1),
        ]
    )

counts = dict(Publisher.objects.annotate(n=Count("titles")).values_list("name", "n"))
check(counts == {"Acme": 2, "Zed": 1}, f"titles per publisher {counts}")
t = Title.objects.select_related("publisher").get(name="Rust in Depth", edition=2)
check(t.publisher.name == "Acme" and t.price == decimal.Decimal("44.00") and t.published is not None, "select_related")
check(Title.objects.filter(publisher__country="GB").count() == 2, "join filter")

# The unique constraint, inside a savepoint (atomic() nested in atomic()) that rolls back alone.
with transaction.atomic():
    Publisher.objects.filter(name="Zed").update(founded="1999-12-31")
    try:
        with transaction.atomic():
            Title.objects.create(publisher=acme, name="Rust in Depth", edition=2)
    except IntegrityError:
        pass
    else:
        check(False, "duplicate edition accepted")
check(str(Publisher.objects.get(name="Zed").founded) == "1999-12-31", "update kept after savepoint rollback")

Title.objects.filter(publisher=acme).update(edition=F("edition") + 10)
check(sorted(Title.objects.filter(publisher=acme).values_list("edition", flat=True)) == [11, 12], "F() update")
zed.delete()  # cascades to its titles (Django collects and deletes them)
check(Title.objects.count() == 2 and Publisher.objects.count() == 1, "cascade delete")

# The app's own many-to-many (0003) and the unique isbn column it added to an existing table.
ann_a, bob_a = Author.objects.create(name="Ann"), Author.objects.create(name="Bob")
first = Title.objects.filter(publisher=acme).order_by("edition").first()
first.authors.add(ann_a, bob_a)
first.isbn = "978-0"
first.save()
check(sorted(Author.objects.filter(titles__isbn="978-0").values_list("name", flat=True)) == ["Ann", "Bob"], "m2m through isbn")
check(list(Title.objects.annotate(n=Count("authors")).filter(n=2).values_list("isbn", flat=True)) == ["978-0"], "m2m count")
try:
    with transaction.atomic():
        Title.objects.filter(pk__gt=first.pk, publisher=acme).update(isbn="978-0")
except IntegrityError:
    pass
else:
    check(False, "duplicate isbn accepted")
first.authors.remove(bob_a)
check(list(first.authors.values_list("name", flat=True)) == ["Ann"], "m2m remove")

# django.contrib.auth: users, groups and permissions through its many-to-many tables.
from django.contrib.auth.models import Group, Permission, User  # noqa: E402

User.objects.filter(username__in=["ann", "bob"]).delete()
Group.objects.filter(name="editors").delete()
editors = Group.objects.create(name="editors")
editors.permissions.add(*Permission.objects.filter(content_type__app_label="library", codename__startswith="change_"))
check(editors.permissions.count() == 3, f"group permissions {list(editors.permissions.values_list('codename', flat=True))}")
ann = User.objects.create_user("ann", "ann@example.com", "pw-ann")
User.objects.create_user("bob", "bob@example.com", "pw-bob")
ann.groups.add(editors)
ann = User.objects.get(username="ann")
check(ann.check_password("pw-ann") and not ann.check_password("nope"), "password hash round trip")
check(ann.has_perm("library.change_title") and not ann.has_perm("library.delete_title"), "permissions through the group")
check(list(User.objects.filter(groups__name="editors").values_list("username", flat=True)) == ["ann"], "m2m filter")
try:
    with transaction.atomic():
        User.objects.create_user("ann", "other@example.com", "x")
except IntegrityError:
    pass
else:
    check(False, "duplicate username accepted")
ann.groups.remove(editors)
check(editors.user_set.count() == 0, "m2m remove")

with connection.cursor() as c:
    tables = connection.introspection.table_names(c)
    check({"library_publisher", "library_title", "django_migrations"} <= set(tables), f"tables {tables}")
    rel = connection.introspection.get_relations(c, "library_title")
    check(rel == {"publisher_id": ("id", "library_publisher")}, f"relations {rel}")
    seqs = connection.introspection.get_sequences(c, "library_title")
    check([s["column"] for s in seqs] == ["id"], f"sequences {seqs}")
    # get_constraints (what the schema editor reads before it alters a constraint or an index): the
    # primary key, the composite unique constraint, the foreign key and its index, the unique isbn.
    cons = connection.introspection.get_constraints(c, "library_title")
    by_cols = {(tuple(v["columns"]), v["primary_key"], v["unique"], v["foreign_key"], v["index"]) for v in cons.values()}
    expected = {
        (("id",), True, True, None, False),
        (("publisher_id", "name", "edition"), False, True, None, False),
        (("publisher_id",), False, False, ("library_publisher", "id"), False),
        (("publisher_id",), False, False, None, True),
        (("isbn",), False, True, None, False),
    }
    check(expected <= by_cols, f"constraints {cons}")
    check(cons["title_unique_edition"]["unique"], f"named unique constraint {cons}")
print("django orm ok")
