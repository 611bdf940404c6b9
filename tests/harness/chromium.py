"""Debian's Chromium as the browser tests and the browser figures launch it (TESTING.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from playwright.async_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# Remote audio that may play without a click: what every call test but the autoplay ones runs
# under (tests/browser/test_call_autoplay.py runs Chromium's default and a stricter policy).
TEST_AUTOPLAY_POLICY = "no-user-gesture-required"


def chromium_args(autoplay_policy: str | None = TEST_AUTOPLAY_POLICY) -> list[str]:
    """The flags, with `--autoplay-policy=<autoplay_policy>`; None leaves Chromium's own
    default policy (sound only once the person has interacted with the page)."""
    return [
        # Measured on this kind of machine (TESTING.md): Playwright cannot fetch its own browser.
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Calls (TESTING.md): fake camera and microphone, no permission prompt, loopback ICE.
        # The fake UI also answers getDisplayMedia with a generated screen, no picker (screen
        # sharing, tests/browser/test_sfu_calls.py).
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--allow-loopback-in-peer-connection",
        *([f"--autoplay-policy={autoplay_policy}"] if autoplay_policy else []),
    ]


CHROMIUM_ARGS = chromium_args()


async def launch_chromium(
    playwright: Playwright,
    autoplay_policy: str | None = TEST_AUTOPLAY_POLICY,
    env: Mapping[str, str] | None = None,
) -> Browser:
    """Chromium with `chromium_args(autoplay_policy)` (and `env`, when given, as its whole
    environment); the caller closes it."""
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=chromium_args(autoplay_policy),
        headless=True,
        env=None if env is None else dict(env),
    )


# The system's fonts less every emoji font: colour fonts (Noto Color Emoji, Twemoji, JoyPixels…),
# files named for emoji, and Symbola (black-and-white emoji). Fontconfig globs know `*` and `?`
# only, so each spelling is its own glob; a glob matches the font file's whole path.
NO_EMOJI_FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <include ignore_missing="no">/etc/fonts/fonts.conf</include>
  <selectfont>
    <rejectfont>
      <glob>*Emoji*</glob>
      <glob>*emoji*</glob>
      <glob>*Moji*</glob>
      <pattern><patelt name="color"><bool>true</bool></patelt></pattern>
      <pattern><patelt name="family"><string>Symbola</string></patelt></pattern>
    </rejectfont>
  </selectfont>
</fontconfig>
"""


def without_emoji_fonts(folder: Path) -> dict[str, str]:
    """The environment for a Chromium (or `fc-list`) that has no emoji font, as many systems
    have none: its fontconfig file, written in `folder`, rejects them from the system's."""
    conf = folder / "fonts.conf"
    conf.write_text(NO_EMOJI_FONTS_CONF)
    return {**os.environ, "FONTCONFIG_FILE": str(conf)}
