"""Demo data for a local run: a coffee chain with stores, tiers, rewards and staff logins.

Above every domain: it fills loyalty's catalogue and creates auth's staff users.
"""
