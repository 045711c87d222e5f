"""pytest plugin (entry point `pytest11`): the `xdecay_session` fixture.

    def test_precedence(xdecay_session):
        assert xdecay_session.run_case("precedence").ok

One session for the whole test run: torch and paddle are imported once, in warm
workers, whichever tests use them; the plain xdecay.run_case shares those workers.
They end with the test run.
"""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def xdecay_session():
    # Imported here, not at the top: pytest loads this plugin in every project where
    # xdecay is installed, and most test runs never ask for the fixture.
    from .session import close_shared_session, shared_session
    yield shared_session()
    close_shared_session()
