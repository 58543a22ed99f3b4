"""A Databento-compatible live gateway: Databento's clients replay the sender's files as live sessions."""
