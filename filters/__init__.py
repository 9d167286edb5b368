"""Per-document stages over Arrow batches: the filters (url, language, quality) with the
keep | (drop, reason) contract of ``base.FilterStage``, PII redaction, and the dedup stage's
per-batch half (MinHash signatures and LSH band keys; the corpus-wide half is pipelines/dedup.py).
Where a datatrove filter exists it is reused or, where too slow, re-implemented and tested against
it as the oracle on real text."""
