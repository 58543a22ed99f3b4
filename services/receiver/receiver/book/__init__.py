"""The L3 order book domain: levels, books, the market, the DBN adapter and read-only views."""
