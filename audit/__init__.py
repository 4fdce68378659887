"""Auditors: history archive, replay, timeline, ledger hash chain and verification (`python -m audit.cli`)."""
