"""Debian's Chromium as the browser tests and the browser figures launch it (TESTING.md)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Measured on this kind of machine (TESTING.md): Playwright cannot fetch its own browser here.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Calls (TESTING.md): fake camera and microphone, no permission prompt, loopback ICE, and
    # remote audio that may play without a click.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
