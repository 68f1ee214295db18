"""Confirm: re-train a sweep's top-K recipes and the ResNet-50 settings with N seeds on a longer schedule, as
studies of their own in the same trial database.

Owns: settings.py, run.py, commands.py. May import: everything else in search, trainers. The command's closing
summary is injected by cli.py, since search never imports reports.
"""
