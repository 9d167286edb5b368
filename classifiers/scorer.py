"""What every educational-value model shares: the estimator interface and the two outputs.

A scorer follows scikit-learn's estimator API over texts: ``fit(texts, scores)``, ``predict(texts)`` ->
``edu_score`` (float, 0-5), ``score(texts, scores)`` -> Spearman correlation (the ranking is what
a threshold on the score depends on, so it is the one number a scorer is judged by; R², the
regressor default, would reward matching a scale that nobody thresholds on). Parameters are
keyword-only constructor arguments with ``get_params`` / ``set_params``, so ``sklearn.base.clone``
works, and the model card records them. The class does not derive from scikit-learn's
BaseEstimator: importing scikit-learn costs 1.3 s (scipy.stats among others), which every Ray
actor of the classify stage and the driver would pay to load a fastText model. Weights go to files of a model directory through ``save_weights`` /
``load_weights``; ``thresher.classifiers.model_dir`` writes the card and checks every file's
SHA-256 before ``load_weights`` sees it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_SCORE = 5


def edu_int(edu_score: np.ndarray) -> np.ndarray:
    """FineWeb-Edu's integer score: the continuous score clipped to 0-5 and rounded."""
    return np.rint(np.clip(edu_score, 0, MAX_SCORE)).astype(np.int64)


class EduScorer:
    kind: str = ""

    @classmethod
    def _param_names(cls) -> list[str]:
        return sorted(p.name for p in inspect.signature(cls.__init__).parameters.values()
                      if p.kind == inspect.Parameter.KEYWORD_ONLY)

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> EduScorer:
        for name, value in params.items():
            if name not in self._param_names():
                raise ValueError(f"{type(self).__name__} has no parameter {name!r} (it has {', '.join(self._param_names())})")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def fit(self, texts: Sequence[str], scores: Sequence[float]) -> EduScorer:
        raise NotImplementedError

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def score(self, texts: Sequence[str], scores: Sequence[float]) -> float:
        from scipy.stats import spearmanr

        return float(spearmanr(scores, self.predict(texts)).statistic)

    @property
    def weight_files(self) -> list[str]:
        """The files ``save_weights`` writes and ``load_weights`` reads, as set by the parameters."""
        raise NotImplementedError

    def save_weights(self, directory: Path) -> list[str]:
        """Write the fitted weights into ``directory``; return ``weight_files``."""
        raise NotImplementedError

    def load_weights(self, directory: Path) -> EduScorer:
        """Read weights written by ``save_weights``; the caller has verified their checksums."""
        raise NotImplementedError
