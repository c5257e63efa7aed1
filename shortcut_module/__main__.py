from shortcut_module.cli import main

main()
