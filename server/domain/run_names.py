"""Readable random names for flow runs ("amber-otter"), as Prefect Server gave them."""

from __future__ import annotations

import secrets

ADJECTIVES = (
    "amber", "ancient", "autumn", "bold", "brave", "bright", "calm", "clever", "cobalt", "cosmic",
    "crimson", "curious", "dapper", "daring", "eager", "electric", "emerald", "fearless", "gentle",
    "golden", "graceful", "happy", "hidden", "humble", "icy", "ivory", "jolly", "keen", "lively",
    "lucky", "lunar", "magnetic", "mellow", "mighty", "misty", "nimble", "noble", "olive", "patient",
    "polar", "proud", "quick", "quiet", "rapid", "rustic", "scarlet", "silent", "silver", "smart",
    "solar", "spry", "steady", "stellar", "sturdy", "sunny", "swift", "tidy", "tireless", "topaz",
    "tranquil", "urban", "valiant", "velvet", "vivid", "wandering", "warm", "wise", "witty", "zesty",
)
ANIMALS = (
    "albatross", "alpaca", "antelope", "badger", "beaver", "bison", "bobcat", "caribou", "cheetah",
    "condor", "coyote", "crane", "dingo", "dolphin", "eagle", "egret", "falcon", "ferret", "finch",
    "fox", "gazelle", "gecko", "heron", "ibex", "impala", "jackal", "jaguar", "kestrel", "koala",
    "lemur", "lynx", "macaw", "marmot", "marten", "mongoose", "moose", "narwhal", "ocelot", "osprey",
    "otter", "panda", "pelican", "penguin", "puffin", "quail", "raccoon", "raven", "salmon", "seal",
    "sparrow", "stork", "swan", "tapir", "tern", "toucan", "turtle", "viper", "walrus", "weasel",
    "wolf", "wombat", "yak", "zebra",
)


def generate_run_name() -> str:
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(ANIMALS)}"
