"""Educational-value models behind one estimator interface (fit / predict / score), their training,
evaluation, model cards and safe loading. None exists yet: issue #5 brings them."""
