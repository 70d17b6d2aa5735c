from tests.personas import personas  # noqa: F401
