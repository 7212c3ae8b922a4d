"""Fault tests: kill -9 at seeded random points and resume; a full disk at every kind of write."""
