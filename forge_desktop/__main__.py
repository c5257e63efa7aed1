from forge_desktop.cli import main

main()
