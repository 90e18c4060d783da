"""`python -m ibdesk` runs the same CLI as the `ibdesk` console script."""

from ibdesk.cli.main import main

if __name__ == "__main__":
    main()
