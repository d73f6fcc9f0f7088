"""`python -m rationalrewards`: the same command line as the `rationalrewards` script."""

from rationalrewards.cli.main import main

if __name__ == "__main__":
    main()
