"""Forge Desktop: measure container runtimes on your own machine."""

__version__ = "0.1.0"
APP_ID = "io.github.forgedesktop.ForgeDesktop"
"""Reverse-DNS application id: desktop file name, D-Bus name, window class."""
APP_NAME = "Forge Desktop"
