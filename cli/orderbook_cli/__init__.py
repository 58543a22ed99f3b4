"""`orderbook`: the sender's reader and the receiver's book, run offline on one file."""
