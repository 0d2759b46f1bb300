"""Which runs to compare: pass them on the command line (paths are from where pytest runs)."""

from types import SimpleNamespace

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("lima-eval regression gate")
    group.addoption("--new-run", required=True, help="run directory of the new checkpoint")
    group.addoption("--old-run", required=True, help="run directory of the last good checkpoint")
    group.addoption("--model", default="my-sft", help="the model's name in the new run")
    group.addoption("--old-model", default=None, help="its name in the old run (default: the same)")
    group.addoption("--min-win-rate", type=float, default=0.0, help="a floor for the new win rate")


@pytest.fixture(scope="session")
def gate(request):
    opt = request.config.getoption
    return SimpleNamespace(new=opt("--new-run"), old=opt("--old-run"), model=opt("--model"),
                           old_model=opt("--old-model"), min_win_rate=opt("--min-win-rate"))
