"""Validation rules and outliers over data values and the warehouse's rollups (issue 19); a Django app
of its own inside the indicators layer, so that the write path of indicators can call it without an
upward import."""
