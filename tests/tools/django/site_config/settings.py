"""Minimal settings: one app, PostgreSQL backend (psycopg 3), connection from VOUCHDB_* variables."""
import os

SECRET_KEY = "vouchdb-tools-test-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "library"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("VOUCHDB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("VOUCHDB_PORT", "5432"),
        "NAME": os.environ.get("VOUCHDB_DB", "vouchdb"),
        "USER": os.environ.get("VOUCHDB_USER", "admin"),
        "PASSWORD": os.environ.get("VOUCHDB_PASSWORD", ""),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
