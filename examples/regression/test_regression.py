"""A red build when the new checkpoint is worse than the last good one (and not just noisier).

    pytest examples/regression --new-run results/ckpt-1200 --old-run results/ckpt-1100 --model my-sft

`lima_run` (from lima-eval's pytest plugin) reads a run from disk; no model or judge is called.
"""

from lima_eval.check import assert_no_regression, assert_win_rate


def test_win_rate_does_not_drop_more_than_5_points(lima_run, gate):
    result = assert_no_regression(lima_run(gate.new), lima_run(gate.old), model=gate.model,
                                  old_model=gate.old_model, max_drop=0.05)
    print(result.message())  # shown with pytest -s: the change, its paired interval and n


def test_win_rate_floor(lima_run, gate):
    assert_win_rate(lima_run(gate.new), model=gate.model, at_least=gate.min_win_rate)
