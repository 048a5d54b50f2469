"""The errors a command prints as one line (naming what is wrong and what to do) and ends with
exit status 2: :class:`UserError` and its kinds (``harness.config.ConfigError``,
``harness.scoring.store.StoreError``).  No imports: every layer may raise them."""
from __future__ import annotations


class UserError(Exception):
    """A fault of the input or the environment, not of the harness: one line, exit status 2."""
