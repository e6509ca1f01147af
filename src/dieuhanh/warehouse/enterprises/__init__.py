"""Enterprises and industrial parks: their profile, their venues and their workers' roster (issue 21).

A Django app of its own inside the warehouse layer, so that counts and analytics can ask for an
enterprise's figures."""
