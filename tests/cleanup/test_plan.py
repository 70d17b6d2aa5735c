"""The planner's rules on plain mappings (no database, no registry): which tags take their
image with them, which go alone, and which platform images follow a deleted index."""

from __future__ import annotations

from registryui.cleanup.plan import compute

INDEX = {"idx": ["amd", "arm"], "idx2": ["amd", "other-arm"]}


def children_of(digest: str) -> list[str]:
    return INDEX.get(digest, [])


def test_a_tag_with_a_sibling_goes_alone():
    plan = compute({"1.0": "a", "stable": "a", "2.0": "b"}, ["1.0"], children_of)
    assert plan.tag_removals == ["1.0"] and plan.images == {}


def test_the_last_tag_of_an_image_takes_the_image():
    plan = compute({"1.0": "a", "stable": "a", "2.0": "b"}, ["1.0", "stable"], children_of)
    assert plan.images == {"a": ["1.0", "stable"]} and plan.tag_removals == []


def test_a_platform_image_held_by_a_staying_index_is_never_deleted():
    plan = compute({"web": "idx", "amd-only": "amd"}, ["amd-only"], children_of)
    assert plan.tag_removals == ["amd-only"] and plan.images == {}


def test_a_deleted_index_takes_the_platform_images_nothing_else_uses():
    tags = {"web": "idx", "web2": "idx2"}
    plan = compute(tags, ["web"], children_of)
    # "amd" is also a platform of idx2, which stays.
    assert plan.images == {"idx": ["web"]}
    assert plan.children == {"idx": ["arm"]}
    assert plan.deleted_digests == ["idx", "arm"]


def test_indexes_go_before_the_images_they_list():
    tags = {"amd-only": "amd", "web": "idx"}
    plan = compute(tags, ["amd-only", "web"], children_of)
    assert list(plan.images) == ["idx", "amd"]
    assert plan.children == {"idx": ["arm"]}  # "amd" is deleted as a tagged image already


def test_unknown_tags_are_reported_not_planned():
    plan = compute({"1.0": "a"}, ["1.0", "nope", "1.0"], children_of)
    assert plan.missing == ["nope"] and plan.images == {"a": ["1.0"]}
