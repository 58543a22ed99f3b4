"""The L3 order book domain: levels, books, the market, the DBN adapter and read-only views."""


def hot_path_build() -> str:
    """How the book runs here: ``"compiled"`` (mypyc, see the receiver's setup.py) or ``"python"``."""
    from receiver.book import book

    return "python" if book.__file__.endswith(".py") else "compiled"
