"""The trial database: the attribute names every trial and study carries (records.py, the schema reports read),
studies and their census, storage URLs (SQLite, PostgreSQL, journal files), the driver lease, and the trial ledger.

Owns: records.py, study.py, storage.py, ledger.py, lease.py, optuna_seam.py. May import: errors, plain_json and
Optuna. Nothing of Ray.
"""
