"""Closed word classes the sentence chunker needs: verbs, pronouns, relation phrases.

Pure data. A word in ``GAP_WORDS`` (or shaped like a verb, see ``looks_like_verb``) ends the
noun phrase before it and is never a modifier of the one after it, so "three strawberries
attracted four fish" stays two objects and "was" is never read as a plural noun.
"""
from __future__ import annotations

AUXILIARIES = frozenset((
    "is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had", "do",
    "does", "did", "will", "would", "can", "could", "should", "may", "might", "must",
    "shall", "isn't", "aren't", "wasn't", "weren't", "doesn't", "don't", "it's", "there's",
    "that's", "who's", "what's", "let's", "here's",
))
PRONOUNS = frozenset((
    "i", "you", "u", "ya", "he", "she", "it", "we", "they", "me", "him", "us", "them", "who", "whom",
    "whose", "which", "what", "where", "when", "why", "how", "there", "here", "itself",
    "himself", "herself", "themselves", "someone", "something", "somebody", "everyone",
    "everything", "nothing", "anything", "each", "other", "others", "one", "ones", "all",
    "whole", "both", "either", "neither", "such",
))
CONJUNCTIONS = frozenset((
    "but", "nor", "so", "yet", "because", "although", "though", "if", "unless", "whereas",
    "since", "until", "after", "before", "then", "than", "as", "like", "also", "not", "only",
    "just", "even", "still",
))
# Greetings and fillers of chatty requests: "hey can u draw ..." ("can" is no noun here).
INTERJECTIONS = frozenset((
    "hey", "hi", "hello", "yo", "oh", "wow", "hmm", "um", "uh", "please", "pls", "plz",
    "thanks", "thx", "ok", "okay", "lol", "omg", "yay", "haha",
))
# Prepositions that are not spatial relations; they end the phrase before them.
PREPOSITIONS = frozenset((
    "to", "from", "for", "about", "across", "through", "toward", "towards", "around",
    "against", "past", "via", "during", "without", "off", "out", "up", "down", "per",
    "along", "amid", "amidst", "throughout", "beyond",
))
# Common verbs that do not look like verbs ("sit", "runs" are caught by the suffix rules).
VERBS = frozenset((
    "sit", "stand", "lie", "lay", "hold", "eat", "run", "walk", "look", "play", "read",
    "ride", "drive", "wear", "carry", "jump", "swim", "sleep", "fly", "make", "take", "give",
    "see", "saw", "seen", "sat", "stood", "lay", "held", "ate", "ran", "rode", "wore", "flew",
    "swam", "slept", "made", "took", "gave", "got", "get", "go", "went", "gone", "come",
    "came", "became", "become", "keep", "kept", "let", "put", "set", "meet", "met", "find",
    "found", "leave", "left", "bring", "brought", "catch", "caught", "throw", "threw",
    "thrown", "draw", "drew", "drawn", "grow", "grew", "grown", "hang", "hung", "fall",
    "fell", "fallen", "rise", "rose", "feel", "felt", "hide", "hid", "hidden", "say", "said",
    "tell", "told", "think", "thought", "know", "knew", "seem", "seems", "appear", "show",
    "shown", "hear", "heard", "fight", "fought", "win", "won", "lose", "lost", "build",
    "built", "buy", "bought", "sell", "sold", "send", "sent", "spend", "spent", "stuck",
    "stick", "shine", "shone", "swing", "swung", "sing", "sang", "sung", "drink", "drank",
    "begin", "began", "chase", "watch", "wait", "rest", "smile", "cry", "laugh",
    "knelt", "crept", "slid", "leapt", "dug", "swept", "wept", "sped", "fled", "shook", "woke",
    "struck", "clung", "flung", "strode", "sank", "sprang", "dwelt",
))
# Adjective-like words a reader never boxes even with a count: "three times", "ten years".
UNIT_WORDS = frozenset((
    "times", "time", "years", "year", "months", "month", "weeks", "week", "days", "hours",
    "hour", "minutes", "minute", "seconds", "second", "percent", "degrees", "degree",
    "meters", "metres", "miles", "inches", "kilometers", "km", "kg", "pounds",
    "dollars", "euros", "people's", "ways", "kinds", "sorts", "types", "bc", "bce", "ad",
    "ce", "am", "pm", "k", "th", "st", "nd", "rd", "x", "fps", "mm", "px", "hd",
))
ERA_WORDS = frozenset(("bc", "bce", "ad", "ce", "am", "pm", "ad.", "b.c."))
# Words that look like verbs or adverbs but are adjectives people put before nouns.
ADJECTIVE_EXCEPTIONS = frozenset((
    "various", "famous", "glorious", "luxurious", "delicious", "gorgeous", "enormous",
    "curious", "nervous", "mysterious", "precious", "gracious", "fabulous", "marvelous",
    "ominous", "glamorous", "colorful", "colourful", "beautiful", "lovely", "friendly",
    "fluffy", "ugly", "silly", "curly", "holy", "lonely", "early", "oily", "woolly",
    "red", "shed", "bed", "sled", "naked", "wicked", "ragged", "jagged", "rugged", "sacred",
    "crooked", "wretched", "beloved", "aged", "learned", "kindred", "hundred", "less",
    "glass", "brass", "plus", "bus", "gas", "dress", "glasses", "boss", "moss",
))
_VERB_SUFFIXES = ("ing", "ed", "ly")
# Participles that do not end in -ing/-ed: "with the lid left open", "with a coat hung on it".
IRREGULAR_PARTICIPLES = frozenset((
    "hidden", "hung", "held", "left", "built", "made", "seen", "stuck", "thrown", "drawn",
    "grown", "fallen", "set", "put", "laid", "lain", "spread", "worn", "shown", "caught",
    "kept", "found", "sold", "brought", "bought", "lit", "sunk", "spun", "split", "shut",
    "torn", "broken", "frozen", "woven", "strewn", "sewn", "bound", "wound", "stuck", "slung",
))


def is_participle(word: str) -> bool:
    """"sitting", "tossed", "hidden": a verb form that does not make a clause of its own
    ("with coins tossed into a case"); "stands", "was", "sat" do."""
    return word.endswith(("ing", "ed")) or word in IRREGULAR_PARTICIPLES


def looks_like_verb(word: str) -> bool:
    """An auxiliary, a listed verb, or an -ing/-ed/-ly/-s word that is not a known adjective:
    "was", "sits", "attracted", "slowly". Callers check the noun lexicon first."""
    if word in AUXILIARIES or word in VERBS:
        return True
    if word in ADJECTIVE_EXCEPTIONS or len(word) <= 3:
        return False
    if word.endswith(_VERB_SUFFIXES):
        return True
    return word.endswith("s") and not word.endswith(("ss", "us", "is", "ous", "'s"))


# Depth, containment and 2D relations, as written -> the agreed relation kinds.
RELATION_PHRASES = {
    "left_of": ("left of", "to the left of", "on the left of", "on the left side of",
                "to the left side of", "at the left of", "at the left side of",
                "on the left-hand side of", "to the left-hand side of", "left-hand side of"),
    "right_of": ("right of", "to the right of", "on the right of", "on the right side of",
                 "to the right side of", "at the right of", "at the right side of",
                 "on the right-hand side of", "to the right-hand side of",
                 "right-hand side of"),
    "above": ("above", "over", "on top of", "atop", "on the top of", "at the top of",
              "hovering over", "floating above", "perched on", "sitting on top of",
              "high above"),
    "below": ("below", "under", "beneath", "underneath", "at the bottom of",
              "on the bottom of", "at the foot of", "at the base of", "down below"),
    "next_to": ("next to", "beside", "besides", "alongside", "adjacent to", "by the side of",
                "on the side of", "on side of", "at the side of", "to the side of",
                "side by side with", "right next to"),
    "near": ("near", "near to", "close to", "nearby", "among", "amongst", "around",
             "surrounded by", "in the vicinity of", "not far from"),
    "behind": ("behind", "hidden by", "hidden behind", "partially hidden by",
               "partly hidden by", "obscured by", "in back of", "at the back of",
               "covered by", "blocked by", "peeking out from behind", "peeking from behind"),
    "in_front_of": ("in front of", "infront of", "at the front of", "in the front of",
                    "blocking"),
    "inside": ("inside", "inside of", "within", "tucked inside"),
}
# Prepositions whose kind depends on the noun after them ("on a bench" vs "on a beach").
CONDITIONAL_PREPOSITIONS = frozenset(("in", "into", "on", "onto", "upon", "at", "by"))
# Between two noun phrases these join them as a list: "a cat and a dog left of a car" puts
# both left of the car; other separators (verbs, "with") do not share the relation.
COORDINATORS = ("and", "or", "&", ",", "as well as", "plus", "along with", "together with",
                "and also", "and then")
# Clause ends: a relation after them never reaches back to objects before them.
CLAUSE_ENDS = (";", ".", "while", "whereas", "meanwhile")
# Break a phrase without joining it to the next: "a man with a dog", "a cat that ...".
BREAK_WORDS = ("with", "where", "whose", "which", "who", "that", "of")
