"""Tests for every stage; run with `python -m pytest tests`."""
