"""Approval of data sets per period and unit, up the levels of either map, and the locks it sets
(issue 19); a Django app of its own inside the indicators layer."""
