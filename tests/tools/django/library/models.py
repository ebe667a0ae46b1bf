from django.db import models


class Publisher(models.Model):
    name = models.CharField(max_length=150)
    country = models.CharField(max_length=3)
    website = models.CharField(max_length=200, blank=True, default="")
    founded = models.DateField(null=True)

    class Meta:
        indexes = [models.Index(fields=["country"], name="publisher_country_idx")]


class Author(models.Model):
    name = models.CharField(max_length=100)


class Title(models.Model):
    publisher = models.ForeignKey(Publisher, on_delete=models.CASCADE, related_name="titles")
    name = models.CharField(max_length=200)
    edition = models.BigIntegerField(default=1)
    price = models.DecimalField(max_digits=8, decimal_places=2, null=True)
    published = models.DateTimeField(auto_now_add=True)
    isbn = models.CharField(max_length=20, null=True, unique=True)
    authors = models.ManyToManyField(Author, related_name="titles")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["publisher", "name", "edition"], name="title_unique_edition")]
