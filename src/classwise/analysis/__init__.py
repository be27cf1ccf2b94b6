"""Analyses of stored evaluations: why classes are weak (flows, similarity, agreement, superclasses,
robust and non-robust features), per-class statistics and corruptions."""
