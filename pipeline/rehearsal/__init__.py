"""``pubctl release NAME --rehearse``: the real config end to end on a shrunk, random-weight model.

A GPU run that fails at hour three on a dtype, a data schema or a misspelt target module is the
expensive way to find a config error. The rehearsal runs the same chain (train, merge, evaluate,
card, check, push plan) on the base model's own config.json and tokenizer with random weights and
a few layers, the first rows of the real dataset and a small lm-eval limit, into
``runs/NAME-rehearsal/`` and ``cards/NAME-rehearsal/``. It never touches the release's own record
and never pushes: its record carries a ``rehearsal`` section that the card shows at the top and
the ``not_rehearsal`` gate refuses before a real push.

Modules: ``options`` (what the user can shrink), ``model_files`` (the base's files, the random
base), ``model_checks`` (those files and ``--layers`` checked before anything is built),
``data_sample`` (the first rows, checked as the train stage will), ``derive`` (the rehearsal config
and what it changed), ``run`` (the chain).
"""

from pipeline.rehearsal.options import REHEARSAL_SUFFIX, RehearsalOptions

__all__ = ["REHEARSAL_SUFFIX", "RehearsalOptions"]
