"""Headless Chromium driven by Selenium, for the viewer's browser tests and benchmark.

Debian's ``chromium`` and ``chromium-driver`` packages (``apt-get install chromium chromium-driver``;
``.ci/run`` installs them when missing). Both paths are given to Selenium, so Selenium Manager never
tries to download a driver. The flags keep Chromium off the network (this machine has none) and let
it draw WebGL in software (SwiftShader).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-unsafe-swiftshader", "--hide-scrollbars", "--force-device-scale-factor=1")
WINDOW = (1200, 800)


def find_browser() -> tuple[str, str] | str:
    """``(chromium, chromedriver)`` paths, or a sentence saying what is missing."""
    try:
        import selenium  # noqa: F401  (the dev extra)
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    chromium = os.environ.get("AUGLIFT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("AUGLIFT_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        return "no chromium/chromedriver on PATH (apt-get install chromium chromium-driver)"
    return chromium, driver


def start_browser(chromium: str, driver: str, window: tuple[int, int] = WINDOW) -> Any:
    """A headless Chromium session with a fresh profile; browser console messages are kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="auglift-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    browser.auglift_profile = profile
    return browser


def stop_browser(browser: Any) -> None:
    browser.quit()
    shutil.rmtree(browser.auglift_profile, ignore_errors=True)


def open_page(browser: Any, page: Path, timeout: float = 20.0) -> float:
    """Load ``page`` and wait until the viewer has drawn its first clip; returns the page's
    ``performance.now()`` at that moment (ms since navigation started)."""
    browser.get(page.resolve().as_uri())
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready = browser.execute_script("return window.auglift && window.auglift.ready ? performance.now() : null")
        if ready is not None:
            return float(ready)
        time.sleep(0.02)
    raise TimeoutError(f"{page}: the viewer did not become ready in {timeout} s; console: {browser.get_log('browser')}")


def console_errors(browser: Any) -> list[str]:
    """Console messages at error level since the last call."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
