"""The report: win / tie / loss tables, LIMA-style figures, summary.json / summary.csv / report.md."""
