"""Helpers that are not registered in BasicSR."""
