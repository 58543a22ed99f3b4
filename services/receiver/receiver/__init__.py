"""Receiver service: decodes the record stream and rebuilds L3 order books."""
