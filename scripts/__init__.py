"""The repository's own tools, run from a checkout and never installed: command files, and the measurement
package :mod:`scripts.measure` that they and the tests import."""
