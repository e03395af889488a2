"""Helpers for the plots-page tests: draw a `dvc plots` page in headless Chromium, offline.

Chromium is the Debian package (`apt-get install -y chromium`; .ci/run installs it when it can);
where it is absent the tests that need it skip, saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "headless Chromium not installed (apt-get install -y chromium)"
# every request goes to a closed local port and no name resolves: the page must need no network
OFFLINE_FLAGS = ["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                 "--host-resolver-rules=MAP * ~NOTFOUND"]
# a URL the page would load (a script, a style sheet, an image), as opposed to a URL that is
# only text inside a library (Vega's "open in editor" link, XML namespaces)
REMOTE_LOAD = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*(?:src|href)\s*=\s*["']?\s*"""
                         r"""(?:https?:)?//""", re.IGNORECASE)


def render_offline(page: Path, profile: Path) -> str:
    """The page's DOM once its scripts ran (30 s of virtual time), with the network cut off."""
    assert CHROMIUM, NO_CHROMIUM
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", *OFFLINE_FLAGS, "--virtual-time-budget=30000",
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"chromium failed on {page}:\n{proc.stderr[-2000:]}"
    return proc.stdout


def screenshot_offline(page: Path, profile: Path, png: Path, size: str = "1400,4000") -> None:
    """A full-page screenshot, network cut off (for looking at the charts, not for asserting)."""
    assert CHROMIUM, NO_CHROMIUM
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--user-data-dir={profile}", *OFFLINE_FLAGS, "--virtual-time-budget=30000",
                    "--hide-scrollbars", f"--window-size={size}", f"--screenshot={png}",
                    page.resolve().as_uri()], capture_output=True, timeout=180, check=True)


def embed_calls(page_html: str) -> int:
    """How many charts the page asks vega-embed to draw: dvc-render's one <div> per chart with
    its vegaEmbed call (not the example calls inside the vendored library's own code)."""
    return len(re.findall(r"""<div id = "([^"]+)">\s*<script type = "text/javascript">\s*"""
                          r"""var spec = .*?vegaEmbed\('#\1', spec\);""", page_html, re.DOTALL))


def drawn_charts(dom: str) -> list[str]:
    """The SVG of every chart Vega drew (plots/offline.html renders to SVG)."""
    return re.findall(r'<svg\b[^>]*class="marks".*?</svg>', dom, re.DOTALL)


def has_data_marks(svg: str) -> bool:
    """A chart with lines or bars drawn from data, not just empty axes."""
    groups = re.findall(r'class="mark-(line|rect) role-mark[^"]*"[^>]*>(.*?)</g>', svg, re.DOTALL)
    return any(re.search(r'\bd="M', body) for _, body in groups)


def chart_errors(dom: str) -> list[str]:
    """The errors plots/offline.html shows in place of a chart that failed."""
    return re.findall(r'<pre class="chart-error">(.*?)</pre>', dom, re.DOTALL)
