"""What the user sees while a stage runs: step bars that name their step, stage bars that count exactly."""

import time

from lima_eval.progress import StageBar, Steps


def test_a_steps_bar_names_each_step_and_its_clock_moves_during_a_long_one(capsys):
    with Steps("convert model", ["assemble", "weights", "save"]) as bar:
        time.sleep(2.3)  # a long step: the line is redrawn every second with the time so far
        bar.next()
        bar.next()
        bar.next()
    err = capsys.readouterr().err
    assert "assemble" in err and "weights" in err and "save" in err and "3/3" in err
    assert "00:01" in err and "00:02" in err  # redrawn while the first step ran


def test_a_stage_bar_moves_by_fractions_in_flight_and_counts_saved_requests_exactly(capsys):
    bar = StageBar("generate m", total=10, cached=2)
    bar.partial(2.5)
    assert bar.bar.n == 4.5
    bar.partial(100)  # never past the total
    assert bar.bar.n == 4.5
    bar.done(3)  # 3 requests saved: exactly what is on disk
    assert bar.bar.n == 5
    bar.close()
    assert "2 cached, 8 to do" in capsys.readouterr().err


def test_disabled_bars_print_nothing(capsys):
    with Steps("quiet", ["a"], enabled=False) as bar:
        bar.next()
    StageBar("quiet", 3, 0, enabled=False).close()
    assert capsys.readouterr().err == ""
