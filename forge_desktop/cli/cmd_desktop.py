"""``forge desktop install [--autostart]`` and ``forge desktop uninstall``: the per-user
launcher (with one action per registry action), the icon theme entries, the AppStream
metainfo and the login entry. The work is in forge_desktop/desktop.py; ``register(app)`` adds
the ``desktop`` group to the root app (cli/app.py calls it)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    desktop_app = typer.Typer(help="Desktop integration for this user: launcher, icons, "
                              "start at login.", no_args_is_help=True)
    app.add_typer(desktop_app, name="desktop")

    @desktop_app.command("install")
    def install_cmd(
        autostart: Annotated[bool, typer.Option(
            "--autostart", help="Also start the tray at login.")] = False,
    ) -> None:
        """Add Forge Desktop to the application menu (XDG_DATA_HOME) and, with --autostart,
        start the tray at login (XDG_CONFIG_HOME). Installing again refreshes the files."""
        from forge_desktop.desktop import install, launcher_path

        for path in install(autostart):
            print(f"wrote {path}")
        print(f"Forge Desktop is in the application menu ({launcher_path().name}); "
              "`forge desktop uninstall` removes it")

    @desktop_app.command("uninstall")
    def uninstall_cmd() -> None:
        """Remove exactly what `forge desktop install` wrote (files changed since are kept)."""
        from forge_desktop.desktop import manifest_path, uninstall

        removal = uninstall()
        for path in removal.removed:
            print(f"removed {path}")
        for path in removal.kept:
            print(f"kept {path}: changed since it was installed")
        if not removal.removed and not removal.kept:
            print(f"nothing to remove (no install recorded in {manifest_path()})")
