"""Test helpers shipped with the package (used by lima-eval's own tests and perf scripts)."""
