"""Leaderboards, the HTML report and the regression gate, rendered from result documents.

``leaderboard`` ranks results into tables (markdown, CSV, JSON); ``html`` renders the static report site;
``gate`` decides pass / regressed / improved for ``ganbench check``. Import ``html`` and ``gate`` directly:
they pull in matplotlib, jinja2 and the evaluation stack only when used.
"""

from ganbench.report.leaderboard import build_tables, render, render_csv, render_json, render_markdown

__all__ = ["build_tables", "render", "render_csv", "render_json", "render_markdown"]
