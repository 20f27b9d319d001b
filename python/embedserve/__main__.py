"""`python -m embedserve ...` runs the command, as the `embedserve` script does."""

from embedserve._command import main

main()
