"""Substring search of repository names through a trigram index, on PostgreSQL only.

``Repository.objects.filter(name__contains=…)`` is ``name LIKE '%…%'``: a B-tree cannot answer
it, so at 20,000 repositories every search read the whole table. ``pg_trgm``'s GIN index
answers LIKE with a leading wildcard (three characters or more; shorter needles fall back to
the scan, which is what they would get anyway). SQLite has no such index and is left untouched:
both operations do nothing there, and the index is not part of the model's state, so no other
migration or table rebuild ever sees it.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from registryui.catalog.migration_ops import PostgresOnlySQL

INDEX = "repo_name_trgm"


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0007_tags_tag_sort_key"),
    ]

    operations = [
        # CreateExtension itself does nothing on other databases. pg_trgm is a trusted
        # extension (PostgreSQL 13+): the database owner may create it without superuser.
        TrigramExtension(),
        PostgresOnlySQL(
            sql=f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "catalog_repository" '
            'USING gin ("name" gin_trgm_ops)',
            reverse_sql=f'DROP INDEX IF EXISTS "{INDEX}"',
        ),
    ]
