"""Registered data of the plugin; importing the package registers them in BasicSR."""
