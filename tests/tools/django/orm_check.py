"""Django ORM work against the migrated schema (run by tests/tools.rs after `manage.py migrate`)."""
import decimal
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
django.setup()

from django.db import IntegrityError, connection, transaction  # noqa: E402
from django.db.models import Count, F  # noqa: E402

from library.models import Publisher, Title  # noqa: E402


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

with connection.cursor() as c:
    tables = connection.introspection.table_names(c)
    check({"library_publisher", "library_title", "django_migrations"} <= set(tables), f"tables {tables}")
    rel = connection.introspection.get_relations(c, "library_title")
    check(rel == {"publisher_id": ("id", "library_publisher")}, f"relations {rel}")
    seqs = connection.introspection.get_sequences(c, "library_title")
    check([s["column"] for s in seqs] == ["id"], f"sequences {seqs}")
print("django orm ok")
