from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Repository


@login_required
def repository_list(request: HttpRequest) -> HttpResponse:
    repositories = Repository.objects.order_by("name")
    return render(request, "catalog/repository_list.html", {"repositories": repositories})
