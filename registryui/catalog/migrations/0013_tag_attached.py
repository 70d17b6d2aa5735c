"""Pages at a million tags (issue 18): ``Tag.attached``, stored.

The tags table hides signature, SBOM and attestation tags and counts them. Deciding that in
SQL joined every tag to its manifest (a tag on a manifest with a ``subject`` is one), which
cost a 100,000-tag repository ~57 ms per page on its counts alone. The flag is
``catalog.artifacts.is_attachment_tag(name, manifest.subject_digest)``, written with the row;
here it is filled for the rows that exist (``fill_attached``), before the index is built
(partial: the attachment rows only).
"""

from django.db import migrations, models

from registryui.catalog.artifacts import is_attachment_tag
from registryui.lib.iters import chunked


def fill_attached(tag_model, manifest_model) -> int:
    """Set ``attached`` on the tags that are attachments; returns how many.

    A tag on a manifest with a ``subject``: one UPDATE. A tag named by cosign's scheme: only
    names that start with ``sha256-`` can be, and those (few) are checked in Python with the
    same function the writers use, then updated by id."""
    with_subject = manifest_model.objects.exclude(subject_digest="").values("id")
    count = tag_model.objects.filter(manifest_id__in=with_subject).update(attached=True)
    candidates = tag_model.objects.filter(name__startswith="sha256-", attached=False)
    named = [
        pk
        for pk, name in candidates.values_list("id", "name").iterator(chunk_size=5000)
        if is_attachment_tag(name, "")
    ]
    for chunk in chunked(named):
        count += tag_model.objects.filter(id__in=chunk).update(attached=True)
    return count


def forwards(apps, schema_editor):
    fill_attached(apps.get_model("catalog", "Tag"), apps.get_model("catalog", "Manifest"))


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0012_tag_size_label_value_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="tag",
            name="attached",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False),
        migrations.AddIndex(
            model_name="tag",
            index=models.Index(
                condition=models.Q(attached=True),
                fields=["repository", "-changed_at"],
                name="tag_repository_attached",
            ),
        ),
    ]
