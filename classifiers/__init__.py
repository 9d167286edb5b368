"""Educational-value models behind one estimator interface (fit / predict / score): a fastText
classifier (``fasttext_scorer``, the shipped default) and scikit-learn linear models over hashed
n-grams (``linear_scorer``); their labels, metrics and training (``labels``, ``metrics``,
``training``, ``report``); model directories with a card and checksum-verified loading
(``model_dir``); and the pipeline's classify stage (``stage``)."""
