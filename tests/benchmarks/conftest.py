import pytest


@pytest.fixture(scope="session")
def services():
    """Overrides tests/conftest.py's autouse `services`: the generator writes files only, and
    needs no Kafka, DynamoDB or Redis."""
    yield None
