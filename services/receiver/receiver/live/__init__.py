"""Booking a live feed: the receiver as a client of a Databento-compatible live gateway."""
