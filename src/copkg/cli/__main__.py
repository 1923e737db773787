"""`python -m copkg.cli`: the `copkg` command."""

from copkg.cli import main

if __name__ == "__main__":
    main()
