"""The labelling app (`lima-eval annotate`): a run's items served to people, blind, LIMA's protocol."""
