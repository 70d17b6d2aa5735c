import django.utils.timezone
from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Least


def fill_first_seen(apps, schema_editor):
    """Existing rows: the row's own creation time, ``first_seen_at``, capped at now.

    ``first_seen_at`` is when the row was created: the sync's clock when a sync imported the
    tag, or the push event's time (when the registry stored the push) when a notification did.
    Either way the tag existed in the registry by then, so counting its age from that moment
    never makes it look older than it is; unlike ``changed_at``, which a first import set to
    the image's build time. A time in the future (a skewed clock) is capped at the migration
    time. Rows created from now on take the model default: this server's clock.
    """
    Tag = apps.get_model("catalog", "Tag")
    now = django.utils.timezone.now()
    Tag.objects.filter(first_seen__isnull=True).update(first_seen=Least(F("first_seen_at"), now))


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_manifest_config_size_bigint_syncrun_status"),
    ]

    operations = [
        # Added empty first, so that existing rows are filled from their own history below
        # rather than all taking the migration's time.
        migrations.AddField(
            model_name="tag",
            name="first_seen",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(fill_first_seen, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="tag",
            name="first_seen",
            field=models.DateTimeField(
                blank=True, default=django.utils.timezone.now, editable=False, null=True
            ),
        ),
    ]
