"""Orchestrator service: serves the web UI and drives the sender and receiver."""
