"""Screenshots of the built documentation site at 1280 px, taken with headless Chromium (``make docs-shots``).

    python tools/docs_screenshots.py [HTML_DIR] [OUT_DIR]

HTML_DIR defaults to docs/_build/html (``make docs``), OUT_DIR to docs/_build/shots (git-ignored, never
committed): look at the PNGs before committing a change to the docs. Without a Chromium on the PATH
(``apt-get install chromium``) it says so and exits 0, so the target never fails for lack of a browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = {  # screenshot name -> page, and the window height that shows its first screens
    "front": ("index.html", 2400),
    "gallery": ("gallery.html", 3000),
    "tutorial": ("tutorial.html", 4000),
    "api-schedules": ("api/schedules.html", 3000),
    "schedules": ("schedules.html", 2000),
}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]


def main(html: str, out: str, width: int = 1280) -> int:
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        print("no Chromium on the PATH (apt-get install chromium): no screenshots taken")
        return 0
    os.makedirs(out, exist_ok=True)
    for name, (page, height) in PAGES.items():
        path = os.path.join(html, page)
        if not os.path.exists(path):
            print(f"{page}: not built, skipped")
            continue
        png = os.path.abspath(os.path.join(out, f"{name}-{width}.png"))
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                            f"--window-size={width},{height}", "file://" + os.path.abspath(path)],
                           check=True, capture_output=True, timeout=120)
        print(png)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[0] if args else os.path.join(ROOT, "docs", "_build", "html"),
                  args[1] if len(args) > 1 else os.path.join(ROOT, "docs", "_build", "shots")))
