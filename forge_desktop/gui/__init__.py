"""The Qt front ends (tray, results window). Imported only by `forge tray` / `forge window`."""
