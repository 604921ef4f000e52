"""Leaderboards and reports rendered from result documents."""

from ganbench.report.leaderboard import render_csv, render_markdown, results_frame

__all__ = ["render_csv", "render_markdown", "results_frame"]
