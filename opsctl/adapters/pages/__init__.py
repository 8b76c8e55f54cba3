"""Static HTML pages for people: the status page and the metrics report page.

opsctl is run by cron and grows no web server; a page regenerated every minute and
served by whatever web server is at hand gives people the same screen (MRTG and
Smokeping worked that way). One self-contained file per page: inline CSS, inline SVG,
no script and nothing fetched from elsewhere, so it reads the same offline, on a phone,
or from a file share.
"""

from __future__ import annotations

from opsctl.adapters.pages.files import check_page_path, write_page
from opsctl.adapters.pages.render import render_report_page, render_status_page
from opsctl.adapters.pages.views import (
    AlertLine,
    FailedRunLine,
    JobLine,
    PeriodPoint,
    ReportView,
    StatusView,
)

__all__ = [
    "AlertLine", "FailedRunLine", "JobLine", "PeriodPoint", "ReportView", "StatusView",
    "check_page_path", "render_report_page", "render_status_page", "write_page",
]
