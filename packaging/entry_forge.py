"""PyInstaller entry of the bundle's `forge` (packaging/forge.spec)."""

from forge_desktop.cli import main

main()
