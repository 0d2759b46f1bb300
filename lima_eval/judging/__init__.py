"""Judges: definitions in judges/<name>/, pure verdict parsers, the pairwise stage and human label imports."""
