from forge_desktop.cli import main

if __name__ == "__main__":  # not when a worker process imports it (results.index)
    main()
