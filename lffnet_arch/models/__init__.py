"""Registered models of the plugin; importing the package registers them in BasicSR."""
