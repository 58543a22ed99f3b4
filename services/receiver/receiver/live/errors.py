"""Why a live session could not start or go on."""


class LiveSessionError(Exception):
    """The session could not start or go on; the message says why in the user's terms."""
