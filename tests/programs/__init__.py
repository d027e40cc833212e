"""Programs the tests run in a child process (``python -m tests.programs.<name>``, see tests.helpers.program):
a fresh interpreter for a Keras backend, a DVC index read anew, or a child that hangs or fails on purpose."""
