"""PyInstaller entry of the bundle's `forge-shortcut` (packaging/forge.spec)."""

from shortcut_module.cli import main

main()
