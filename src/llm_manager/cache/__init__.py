"""Exact-match response cache and in-flight de-duplication."""
