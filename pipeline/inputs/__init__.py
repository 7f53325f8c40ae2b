"""Readers of untrusted input files with one error contract: images, JSON, restricted pickles."""
