"""Unit tests of the test bed program (python3 -m unittest discover -s testbed/tests -t testbed)."""
