"""A scikit-learn linear model over hashed word n-grams.

Features: ``hashing`` (scikit-learn's HashingVectorizer, l2-normalised term counts) or ``tfidf``
(the same hashed counts with sublinear tf and the training set's idf, then l2-normalised). Hashing
means no vocabulary: the whole model is a few arrays, saved with ``numpy.savez`` and loaded with
``allow_pickle=False``, so loading a model directory never unpickles anything.

Model: ``ridge`` regresses the score directly; ``ordinal`` fits one logistic regression per
threshold, P(score >= k) for k = 1..5 (Frank and Hall's decomposition of an ordinal target), and
predicts their sum, which is the expected score when the thresholds are consistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from thresher.classifiers.scorer import MAX_SCORE, EduScorer

_WEIGHTS = "weights.npz"
# A threshold no training document falls on one side of: its probability is that side's, 0 or 1.
_SURE_LOGIT = 30.0


class LinearScorer(EduScorer):
    kind = "sklearn"

    # Defaults chosen by 3-fold cross-validation inside the training split of data/labels (the
    # held-out split unseen): ordinal on hashed counts, C=100, ranked best (Spearman 0.887; tf-idf
    # 0.881; ridge 0.871 with alpha 0.1, 0.874 with 0.03).
    def __init__(self, *, features: Literal["hashing", "tfidf"] = "hashing", model: Literal["ridge", "ordinal"] = "ordinal",
                 n_features: int = 2**18, ngram_max: int = 2, alpha: float = 0.1, C: float = 100.0):
        self.features = features
        self.model = model
        self.n_features = n_features
        self.ngram_max = ngram_max
        self.alpha = alpha  # ridge
        self.C = C  # ordinal

    def _vectorizer(self):
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(n_features=self.n_features, ngram_range=(1, self.ngram_max), alternate_sign=False,
                                 norm="l2" if self.features == "hashing" else None, dtype=np.float32)

    def _features(self, texts: Sequence[str]):
        from sklearn.preprocessing import normalize

        x = self.vectorizer_.transform(texts)
        if self.features == "hashing":
            return x
        np.log(x.data, out=x.data)  # sublinear tf, 1 + log(count): a word said ten times is not ten times the evidence
        x.data += 1
        x.data *= self.idf_[x.indices]
        return normalize(x, copy=False)

    def fit(self, texts: Sequence[str], scores: Sequence[float]) -> LinearScorer:
        if self.features not in ("hashing", "tfidf") or self.model not in ("ridge", "ordinal"):
            raise ValueError(f"features must be hashing or tfidf and model ridge or ordinal, not {self.features!r}, {self.model!r}")
        y = np.asarray(scores, dtype=np.float64)
        self.vectorizer_ = self._vectorizer()
        if self.features == "tfidf":
            df = np.bincount((self.vectorizer_.transform(texts) > 0).nonzero()[1], minlength=self.n_features)
            self.idf_ = (np.log((1 + len(y)) / (1 + df)) + 1).astype(np.float32)  # scikit-learn's smoothed idf
        x = self._features(texts)
        if self.model == "ridge":
            from sklearn.linear_model import Ridge

            fitted = Ridge(alpha=self.alpha).fit(x, y)
            self.coef_, self.intercept_ = fitted.coef_[None, :].astype(np.float32), np.array([fitted.intercept_])
        else:
            from sklearn.linear_model import LogisticRegression

            coefs, intercepts = [], []
            for k in range(1, MAX_SCORE + 1):
                above = y >= k
                if above.all() or not above.any():
                    coefs.append(np.zeros(self.n_features, np.float32))
                    intercepts.append(_SURE_LOGIT if above.all() else -_SURE_LOGIT)
                    continue
                # dual: with far more features than documents it solves the smaller problem (10x faster, same fit)
                fitted = LogisticRegression(C=self.C, solver="liblinear", dual=True, max_iter=1000).fit(x, above)
                coefs.append(fitted.coef_[0].astype(np.float32))
                intercepts.append(float(fitted.intercept_[0]))
            self.coef_, self.intercept_ = np.stack(coefs), np.array(intercepts)
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        z = np.asarray(self._features(texts) @ self.coef_.T) + self.intercept_
        if self.model == "ridge":
            return z[:, 0].clip(0, MAX_SCORE)
        return (1 / (1 + np.exp(-z))).sum(axis=1)

    @property
    def weight_files(self) -> list[str]:
        return [_WEIGHTS]

    def save_weights(self, directory: Path) -> list[str]:
        arrays = {"coef": self.coef_, "intercept": self.intercept_}
        if self.features == "tfidf":
            arrays["idf"] = self.idf_
        np.savez_compressed(Path(directory) / _WEIGHTS, **arrays)
        return self.weight_files

    def load_weights(self, directory: Path) -> LinearScorer:
        with np.load(Path(directory) / _WEIGHTS, allow_pickle=False) as arrays:
            self.coef_, self.intercept_ = arrays["coef"], arrays["intercept"]
            if self.features == "tfidf":
                self.idf_ = arrays["idf"]
        expected = (1 if self.model == "ridge" else MAX_SCORE, self.n_features)
        if self.coef_.shape != expected:
            raise ValueError(f"{_WEIGHTS}: coefficients of shape {self.coef_.shape}, the card's parameters need {expected}")
        self.vectorizer_ = self._vectorizer()
        return self
