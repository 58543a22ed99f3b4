"""The history of a stream: points in it (a time or an event) and checkpoints of the whole market."""
