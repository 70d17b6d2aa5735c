"""Pages at a million tags (issue 18): the two orders that no index served.

- ``Tag.size``: its manifest's ``total_size``, copied onto the row so that the tags table
  sorts a 100,000-tag repository by size through an index range (``tag_repository_size``,
  ``tag_repository_size_desc``: both directions with their tie-breakers) instead of joining and
  sorting every tag. Filled here in one UPDATE, before the indexes are built.
- ``Label.value``: its single-column index becomes ``(value, id)``, the order label search
  reads, so the scan of a value prefix stops at the search's limit however many labels share
  one value.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_sizes(apps, schema_editor):
    Manifest = apps.get_model("catalog", "Manifest")
    Tag = apps.get_model("catalog", "Tag")
    Tag.objects.update(
        size=Subquery(Manifest.objects.filter(pk=OuterRef("manifest_id")).values("total_size"))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0011_attach_referrers"),
    ]

    operations = [
        migrations.AddField(
            model_name="tag",
            name="size",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(fill_sizes, migrations.RunPython.noop, elidable=False),
        migrations.AddIndex(
            model_name="tag",
            index=models.Index(
                fields=["repository", "size", "sort_key", "name"], name="tag_repository_size"
            ),
        ),
        migrations.AddIndex(
            model_name="tag",
            index=models.Index(
                fields=["repository", "-size", "sort_key", "name"],
                name="tag_repository_size_desc",
            ),
        ),
        migrations.AlterField(
            model_name="label",
            name="value",
            field=models.CharField(max_length=500),
        ),
        migrations.AddIndex(
            model_name="label",
            index=models.Index(fields=["value", "id"], name="label_value_id"),
        ),
    ]
