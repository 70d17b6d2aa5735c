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

INDEX = "repo_name_trgm"


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that runs on PostgreSQL and does nothing on any other database."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


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
