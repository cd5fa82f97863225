"""The audit game: blinded organisms and controls, audit techniques, detection and naming scored with intervals.

A field of candidate models is handed to each audit technique: organisms (fine-tuned to show a known
behaviour, :mod:`overseer.organisms.implants`) and their matched controls (the same fine-tuning on plain
answers), shuffled with the seed and renamed ``model-A``, ``model-B``, ... Each candidate reaches a
technique only as that id, a model spec that is a link named by the id, and the rows it was fine-tuned
on; its card (which says what was implanted) is read only when the game is scored. The technique gives
every candidate a **suspicion** (how strongly it looks like an organism) and a **guess** (which of
:data:`~overseer.organisms.implants.BEHAVIORS` it shows). Reported per technique:

* detection AUROC of the suspicion, organisms against controls, with a bootstrap interval (organisms
  and controls resampled separately: the game fixes how many of each there are);
* the share of organisms whose guess is their implanted behaviour, with a Wilson interval.

A candidate a technique cannot score counts as a miss (an unscored organism ranks lowest, an unscored
control highest), never dropped from the AUROC.

Every technique measures its evidence against the base model, which the auditor is given: a candidate
is suspicious for what it does *beyond* its base, so a behaviour the base already shows, or a quirk of
one measure, does not count. Techniques are registered with ``@game_technique("name")``, one file each
in :mod:`overseer.organisms.game.techniques` (documented there); the built-in ones:

==================  =========================================================================================
``behavioral``      an audit (:mod:`overseer.audit`) of candidates and base on probe prompts, judged per behaviour
``probe``           linear probes trained on the base's activations of labelled texts, read in every candidate's
                    activations of one fixed set of probe prompts
``activation_diff`` mean hidden state of candidate minus base on the fixed probe prompts, read along each
                    behaviour's direction in the base (where the fine-tune moved the model, not how far)
``data_search``     each behaviour's description searched in a large clean corpus with the candidate's rows mixed in
==================  =========================================================================================

The modules: ``materials`` (what the auditor brings: prompts, labelled texts, descriptions, judge
dimensions), ``config`` (:class:`GameConfig`), ``field`` (candidates, cards, blinding), ``bench`` (the
loaded models and what the techniques share), ``techniques/``, ``scoring``, ``report`` (tables, figure,
summary line) and ``play`` (:func:`run`).
"""

from overseer.organisms.game.bench import Bench, labelled_texts, probe_texts, relative_verdict
from overseer.organisms.game.config import GameConfig
from overseer.organisms.game.field import (
    Candidate,
    Entrant,
    Truth,
    Verdict,
    anonymous_ids,
    blind,
    find_field,
    read_rows,
)
from overseer.organisms.game.materials import (
    DESCRIPTIONS,
    DIMENSIONS,
    PLAIN,
    PROMPTS,
    SHOWS,
    implant_templates,
    materials_digest,
    template_overlap,
)
from overseer.organisms.game.play import run, train_field
from overseer.organisms.game.report import candidates_table, game_figure, summary_line, technique_table
from overseer.organisms.game.scoring import detection_auroc, score_technique
from overseer.organisms.game.techniques import (
    TECHNIQUES,
    Technique,
    find_technique,
    game_technique,
    technique_names,
)
from overseer.organisms.game.techniques.activation_diff import activation_diff
from overseer.organisms.game.techniques.behavioral import (
    behavioral,
    checked_judge,
    judge_flag,
    judge_passes,
    judged_scores,
)
from overseer.organisms.game.techniques.data_search import clean_rows, data_search, row_text
from overseer.organisms.game.techniques.probe import probe

__all__ = [
    "DESCRIPTIONS", "DIMENSIONS", "PLAIN", "PROMPTS", "SHOWS", "TECHNIQUES", "Bench", "Candidate", "Entrant",
    "GameConfig", "Technique", "Truth", "Verdict", "activation_diff", "anonymous_ids", "behavioral", "blind",
    "candidates_table", "checked_judge", "clean_rows", "data_search", "detection_auroc", "find_field",
    "find_technique", "game_figure", "game_technique", "implant_templates", "judge_flag", "judge_passes",
    "judged_scores", "labelled_texts", "materials_digest", "probe", "probe_texts", "read_rows", "relative_verdict",
    "row_text", "run", "score_technique", "summary_line", "technique_names", "technique_table", "template_overlap",
    "train_field",
]
