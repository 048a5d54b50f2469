"""The reporting room: everything that turns saved records into tables, figures and tracked artifacts.

``scores`` (``harness report``: proxy-ranking tables and figures), ``search`` (``harness
search-report``: the search table and figures), ``agreement`` (``harness agreement``: rank
agreement with published scores), ``reference`` (``harness reference``: regression bands),
``metrics`` (the rank correlations every report uses), ``tables`` (the one table writer:
Markdown, LaTeX, CSV), ``style`` (the one figure style and save helper) and ``artifacts`` (the one
place report artifacts are logged to the tracker).

Importing this package imports nothing heavy; each module imports what it needs.
"""
