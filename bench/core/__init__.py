"""The lowest layer: errors, atomic writes, the metric schema and the record store. Imports no other layer."""
