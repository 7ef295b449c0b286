"""The append-only record of what staff changed: who, when, from where, before and after."""
