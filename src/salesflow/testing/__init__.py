"""Test support for salesflow users and plugin authors: hypothesis strategies and conformance suites.

Importing this package needs the ``test`` extra (pytest, hypothesis).
"""
