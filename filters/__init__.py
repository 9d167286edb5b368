"""Per-document filters and taggers (language, heuristic quality, URL rules, PII, decontamination)
and the corpus-wide dedup stage's per-batch pieces. Each is plain Python over Arrow batches: signals
in, keep or (drop, reason) out. None exists yet: issue #3 brings the first ones."""
