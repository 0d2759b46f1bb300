"""Speed benchmarks: each script prints one JSON line."""
