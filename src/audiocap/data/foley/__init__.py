"""Foley: a paired audio-caption dataset built from sounds that software packages ship.

``build_foley(out, preset="default")`` fetches the preset's packages, cleans their sound
files into an event library, composes seeded 10-s mixtures and writes a manifest whose
captions are true to each mixture's recipe. See ``sources.yaml`` and ``lexicon.yaml``.
"""

from audiocap.data.foley.build import FoleyError, build_foley

__all__ = ["FoleyError", "build_foley"]
