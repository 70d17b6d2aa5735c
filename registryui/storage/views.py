"""The storage page: where the bytes are, over what the viewer may see."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from registryui.browse.views import paginate, render_page
from registryui.catalog.freshness import catalog_freshness
from registryui.teams.decorators import viewer_required

from . import charts
from .figures import storage_report

REPOSITORIES_PER_PAGE = 25
#: Bars in the "bytes by namespace" chart.
NAMESPACE_BARS = 12


@require_safe
@viewer_required
def storage(request: HttpRequest) -> HttpResponse:
    report = storage_report(request.user)
    page = paginate(request, report.repositories, REPOSITORIES_PER_PAGE)
    largest = report.repositories[0].referenced if page.paginator.count else 0
    namespace_max = report.namespaces[0].referenced if report.namespaces else 0
    context = {
        "report": report,
        "page": page,
        "repository_rows": [(f, charts.bar(f, largest)) for f in page.object_list],
        "namespace_rows": [
            (f, charts.bar(f, namespace_max)) for f in report.namespaces[:NAMESPACE_BARS]
        ],
        "more_namespaces": max(len(report.namespaces) - NAMESPACE_BARS, 0),
        "growth_chart": charts.line_chart(report.growth.points) if report.growth else None,
        "freshness": catalog_freshness(),
    }
    return render_page(request, "storage/storage.html", context, "repositories")
