"""Sender service: reads DBN MBO files and streams their records over TCP."""
