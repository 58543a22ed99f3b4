"""``python -m sender.seed``: write the demo file into the data folder unless it is already there."""

from __future__ import annotations

import logging

from demo_market.writer import write_demo_file
from obm_shared.logs import configure_logging
from sender.core.config import Settings

logger = logging.getLogger("sender.seed")


def main() -> None:
    """Create ``data_dir/default_file`` with the deterministic demo data if it does not exist."""
    settings = Settings()
    configure_logging("sender", settings.log_level)
    path = settings.data_dir / settings.default_file
    if path.is_file():
        logger.info("demo data present", extra={"path": str(path)})
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(".partial-" + path.name)
    written = write_demo_file(partial, records=settings.demo_records)
    partial.rename(path)
    logger.info("demo data written", extra={"path": str(path), "records": written})


if __name__ == "__main__":
    main()
