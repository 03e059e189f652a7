"""Debian's chromium for the dashboard's browser tests, driven by Playwright.

Playwright's own browser downloads are never used: `make test` installs the distribution's
chromium when it is missing. Where it still cannot be found the tests fail under CI=true and are
skipped with the reason elsewhere."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("BIHUAN_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "dashboard"


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chromium_path() -> str:
    path = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if not path:
        _missing(f"The dashboard's browser tests need Debian's chromium at {CHROMIUM} (or "
                 "BIHUAN_TEST_CHROMIUM): `make test` installs it, or run "
                 "`apt-get update && apt-get install -y chromium`.")
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
    if not fonts.stdout.strip():
        _missing("No Chinese font is installed, so the dashboard's screenshots would show boxes: "
                 "`make test` installs one, or run `apt-get install -y fonts-wqy-microhei`.")
    return path


def playwright_api():
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("The dashboard's browser tests need Playwright for Python: `make install`.")
    return async_playwright
