"""Reports: read run records, aggregate over seeds within comparable groups, render Markdown and HTML."""

from bench.report.render import ReportFiles, build_report

__all__ = ["ReportFiles", "build_report"]
