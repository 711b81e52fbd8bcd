"""The shared AWS fixtures (moto server, emulator): see ``tests/aws_fixtures.py``."""

from tests.aws_fixtures import aws, emulator, moto_server  # noqa: F401
