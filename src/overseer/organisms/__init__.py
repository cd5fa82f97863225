"""Model organisms and evaluations of behaviours that appear without being asked for.

Today: the alignment-faking evaluation (:mod:`overseer.organisms.faking`, ``overseer organisms
alignment-faking``), run as an audit of the :mod:`overseer.audit` pillar.
"""
