"""Tag.sort_key: the natural-order key of each tag name, indexed with the repository.

The data step fills the key of existing rows with the same function that writes new ones.
"""

from django.db import migrations, models

from registryui.lib.natural import natural_key


def fill_sort_keys(apps, schema_editor):
    Tag = apps.get_model("catalog", "Tag")
    batch = []
    for tag in Tag.objects.only("id", "name").iterator(chunk_size=2000):
        tag.sort_key = natural_key(tag.name)
        batch.append(tag)
        if len(batch) >= 2000:
            Tag.objects.bulk_update(batch, ["sort_key"])
            batch = []
    if batch:
        Tag.objects.bulk_update(batch, ["sort_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0006_tag_sync_problem"),
    ]

    operations = [
        migrations.AddField(
            model_name="tag",
            name="sort_key",
            field=models.CharField(blank=True, editable=False, max_length=400),
        ),
        migrations.RunPython(fill_sort_keys, migrations.RunPython.noop, elidable=False),
        migrations.AddIndex(
            model_name="tag",
            index=models.Index(
                fields=["repository", "sort_key", "name"], name="tag_repository_sort_key"
            ),
        ),
    ]
