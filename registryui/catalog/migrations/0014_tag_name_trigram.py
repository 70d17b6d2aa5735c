"""The tags table's name filter through a trigram index, on PostgreSQL only.

The filter is ``name__icontains``, ``UPPER(name) LIKE UPPER('%…%')``: no B-tree answers it,
so a 100,000-tag repository's ``?q=v1.5`` read every one of its tags (24 ms at a million tags,
most of the page). A ``pg_trgm`` GIN index on ``UPPER(name)`` answers it for needles of three
characters or more (shorter ones keep the walk of the repository's tags; the planner picks
whichever reads less). Building it takes a few seconds per million tags, under the table's
write lock.

SQLite is untouched (see 0008). An FTS5 trigram table over the tag names was measured there
at a million tags and not kept: 0.1 ms for a rare fragment, but 50 ms for ``latest`` (a tag of
every repository) and 850 ms for ``v0.``, where reading the 100,000-tag repository's names
index takes 9 ms whatever the text; and its triggers would silently go with every rebuild of
the tags table that Django's SQLite migrations make.
"""

from django.db import migrations

from registryui.catalog.migration_ops import PostgresOnlySQL

INDEX = "tag_name_upper_trgm"


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0013_tag_attached"),
    ]

    operations = [
        PostgresOnlySQL(
            sql=f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "catalog_tag" '
            'USING gin (UPPER("name") gin_trgm_ops)',
            reverse_sql=f'DROP INDEX IF EXISTS "{INDEX}"',
        ),
    ]
