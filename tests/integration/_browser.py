"""A real headless Chromium (Debian's chromium + chromium-driver) driven by Selenium.

Fails, never skips, when the browser is missing: `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "chromium-driver")
INSTALL_HINT = "apt-get install chromium chromium-driver (.ci/run does)"


def _which(names: tuple[str, ...]) -> str:
    for name in names:
        path = shutil.which(name) or (
            f"/usr/lib/chromium/{name}" if name == "chromedriver" else None
        )
        if path and Path(path).exists():
            return path
    raise AssertionError(f"none of {', '.join(names)} is installed: {INSTALL_HINT}")


@contextmanager
def chromium(
    *, javascript: bool = True, width: int = 1400, height: int = 1800
) -> Iterator[webdriver.Chrome]:
    """Yield a headless Chromium; quit it afterwards."""
    options = webdriver.ChromeOptions()
    options.binary_location = _which(BROWSERS)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager then downloads nothing.
    driver = webdriver.Chrome(options=options, service=Service(_which(DRIVERS)))
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_dir(default: Path) -> Path:
    """Return where screenshots go: $STREAMKPI_SCREENSHOT_DIR, else ``default``."""
    chosen = Path(os.environ.get("STREAMKPI_SCREENSHOT_DIR", default))
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen
