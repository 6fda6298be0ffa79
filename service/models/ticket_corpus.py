"""A seeded corpus of support tickets: templates, slot vocabulary, typos, mixed and vague tickets.

Pure and deterministic: the same seed gives the same tickets on every machine (stdlib `random`).
`ticket_text(rng, category)` is also the demo traffic's ticket source.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CATEGORIES: tuple[str, ...] = ("billing", "technical", "account", "shipping", "other")
# How often each category is written in; the corpus keeps these shares up to sampling noise.
CATEGORY_PRIORS: Mapping[str, float] = {
    "billing": 0.26,
    "technical": 0.24,
    "account": 0.18,
    "shipping": 0.20,
    "other": 0.12,
}
# Shares of tickets that also talk about a second topic, or say almost nothing at all:
# they are what keeps a good model from being right (and sure) every time.
MIXED_SHARE = 0.14
VAGUE_SHARE = 0.04
TYPO_RATE = 0.03

# fmt: off
SLOTS: Mapping[str, Sequence[str]] = {
    "product": (
        "wireless headphones", "standing desk", "coffee grinder", "running shoes", "phone case",
        "air purifier", "office chair", "blender", "backpack", "smart watch", "desk lamp",
        "yoga mat", "monitor", "keyboard", "water bottle", "rain jacket", "espresso machine",
    ),
    "plan": (
        "Pro plan", "Basic plan", "annual subscription", "monthly subscription", "family plan",
        "Business tier", "premium membership", "starter plan",
    ),
    "device": (
        "iPhone 14", "iPhone 12", "Pixel 7", "Galaxy S23", "my Windows 11 laptop", "my MacBook",
        "Chrome on Linux", "Firefox", "Safari", "my iPad", "the Android app", "Edge",
    ),
    "feature": (
        "the export to CSV", "dark mode", "the dashboard", "push notifications", "sync",
        "the search", "file upload", "the calendar view", "two-way sync", "the reports page",
        "the API", "offline mode", "the checkout page", "the mobile app",
    ),
    "error": (
        "error 500", "ERR_CONNECTION_RESET", "error code E1042", "a blank white screen",
        "'something went wrong'", "a timeout", "error 403", "an SSL warning", "code 0x80070005",
    ),
    "carrier": ("UPS", "FedEx", "DHL", "USPS", "the courier", "Royal Mail", "the delivery guy"),
    "city": (
        "Denver", "Leeds", "Toronto", "Austin", "Lyon", "Melbourne", "Dublin", "Rotterdam",
        "Portland", "Glasgow",
    ),
    "when": (
        "yesterday", "last week", "on Monday", "two days ago", "this morning", "last month",
        "on the 3rd", "over the weekend", "an hour ago", "since Friday",
    ),
    "name": ("Anna", "Tom", "Priya", "Marco", "Lena", "David", "Sofia", "Kenji", "Olu", "Grace"),
    "card": ("my Visa", "my Mastercard", "my Amex", "PayPal", "my debit card", "Apple Pay"),
}
# fmt: on

TEMPLATES: Mapping[str, Sequence[str]] = {
    "billing": (
        "I was charged twice for my {plan} {when}.",
        "Why was I billed {amount} when the {plan} costs less?",
        "Please refund the {amount} charge on {card}.",
        "I cancelled my {plan} but you still charged me {amount}.",
        "The invoice for order {order} shows the wrong amount.",
        "Can I get a VAT invoice for my last payment?",
        "My payment with {card} keeps getting declined at checkout.",
        "The promo code did not apply and I paid full price, {amount}.",
        "How do I update the credit card on file for my {plan}?",
        "I need a receipt for {amount} for my expense report.",
        "You raised the price of the {plan} without telling me.",
        "There is a charge of {amount} I don't recognize on my statement.",
        "I want a refund for the {product}, it was not what I ordered.",
        "Can I switch from the monthly to the annual billing cycle?",
        "My bank shows a pending charge of {amount} from you.",
        "The refund you promised {when} still has not reached {card}.",
        "Why does my invoice include tax when I am tax exempt?",
        "Please stop the automatic renewal of my {plan}.",
        "I was billed for two seats but we only use one.",
        "The discount for students was not applied to my {plan}.",
    ),
    "technical": (
        "The app crashes every time I open {feature} on {device}.",
        "I get {error} when I try to use {feature}.",
        "{feature} has been really slow since {when}.",
        "Sync between {device} and the web app stopped working.",
        "After the latest update {feature} shows {error}.",
        "Push notifications are not arriving on {device}.",
        "The API returns {error} for every request since {when}.",
        "File upload fails at 99 percent with {error}.",
        "The page just keeps loading forever on {device}.",
        "{feature} is broken, the buttons do nothing.",
        "I cannot connect the integration, it says {error}.",
        "The export produces an empty file.",
        "Images don't load on {device}, only grey boxes.",
        "The app freezes when I switch to {feature}.",
        "Is there an outage? Everything shows {error} for me.",
        "The calendar shows events on the wrong day since the update.",
        "The website layout is completely broken in {device}.",
        "Video playback stutters and then stops with {error}.",
        "The search returns no results even for exact titles.",
        "My data from {when} disappeared after syncing {device}.",
    ),
    "account": (
        "I forgot my password and the reset email never arrives.",
        "How do I change the email address on my account?",
        "Please delete my account and all my data.",
        "My account is locked after too many login attempts.",
        "I lost my phone and can't get the two-factor code.",
        "I have two accounts, can you merge them into one?",
        "Someone logged into my account from {city}, I did not do that.",
        "How can I change my username?",
        "The verification link in the signup email has expired.",
        "I want to download a copy of all data you hold about me.",
        "Please remove my old phone number from the account.",
        "I can't sign in with Google anymore, it makes a new account.",
        "How do I add a second user to my account?",
        "I changed my name, please update it on my profile.",
        "My account was suspended without any explanation.",
        "Please unsubscribe me from the marketing emails.",
        "I never get the login code by SMS.",
        "How do I transfer ownership of the workspace to a colleague?",
        "Reset my password please, the link says invalid token.",
        "I think my account was hacked, the password no longer works.",
    ),
    "shipping": (
        "Where is my order {order}? It was supposed to arrive {when}.",
        "The tracking for order {order} has not updated since {when}.",
        "My {product} arrived damaged, the box was crushed.",
        "{carrier} says the package was delivered but I never got it.",
        "I need to change the delivery address for order {order}.",
        "My order is stuck in customs in {city}.",
        "Only half of my order arrived, the {product} is missing.",
        "Can you ship to {city}, and how long does it take?",
        "The {product} was left at the wrong house.",
        "{carrier} tried to deliver {when} but nobody rang the bell.",
        "Can I pick up order {order} from the warehouse instead?",
        "I received someone else's {product} instead of mine.",
        "How much is express shipping to {city}?",
        "My package has been in transit for three weeks.",
        "The delivery window keeps getting pushed back.",
        "Can you hold my parcel until I am back {when}?",
        "The tracking number you sent does not work on the {carrier} site.",
        "The {product} came without the charger in the box.",
        "Order {order} shows delivered to {city}, I live somewhere else.",
        "I want to return the {product}, how do I get a shipping label?",
    ),
    "other": (
        "I just wanted to say the {product} is great, thank you!",
        "Are you hiring? I would love to work with your team.",
        "We would like to discuss a partnership with your company.",
        "Do you have a physical store in {city}?",
        "It would be nice if {feature} had more options.",
        "I am a journalist writing about online retail, can we talk?",
        "Your support agent {name} was very helpful, please thank them.",
        "What are your opening hours during the holidays?",
        "Do you offer gift cards?",
        "Is the {product} made from recycled materials?",
        "Can I suggest a feature for the next release?",
        "Do you sponsor local events in {city}?",
        "I have a question about your sustainability policy.",
        "Do you plan to sell the {product} in other colours?",
        "How do I leave a review for the {product}?",
        "I'm a student working on a project about your company.",
        "Your website has a typo on the about page.",
        "Who do I contact about wholesale orders?",
        "Which {product} would you recommend for a beginner?",
        "Just a quick question about your company values.",
    ),
}

# Said in tickets of any category: they carry (almost) no signal.
VAGUE_TICKETS: Sequence[str] = (
    "Help please.",
    "It's not working.",
    "Still waiting for an answer.",
    "Please call me back.",
    "This is urgent!!",
    "Hello? Anyone there?",
    "Same problem as last time.",
    "Can someone look into my issue?",
    "I need help with my order.",
    "Not happy with this at all.",
    "Please fix this.",
    "See my previous message.",
)
GREETINGS: Sequence[str] = (
    "", "", "", "Hi,", "Hello,", "Hello team,", "Hey", "Dear support,", "Good morning,",
    "Hi there,",
)  # fmt: skip
CONTEXT: Sequence[str] = (
    "I have been a customer for {years} years.",
    "This is really frustrating.",
    "Please get back to me as soon as possible.",
    "I already tried the chat but got no answer.",
    "My email is {email} if you need it.",
    "You can reach me at {phone}.",
    "This is the second time I am writing about this.",
    "I need this sorted before the weekend.",
    "Thanks in advance for your help.",
    "I am using {device}.",
)
CLOSINGS: Sequence[str] = (
    "", "", "", "Thanks", "Thank you!", "Regards, {name}", "Cheers", "Sent from my iPhone",
    "Best, {name}", "thx",
)  # fmt: skip
_SENTENCE_PUNCTUATION = re.compile(r"[.,](\s|$)")
# Neighbours on a QWERTY keyboard, for replacement typos.
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


@dataclass(frozen=True)
class Ticket:
    text: str
    category: str


def generate_corpus(n: int, seed: int) -> list[Ticket]:
    """`n` tickets drawn with `seed`; categories follow CATEGORY_PRIORS."""
    rng = random.Random(seed)
    tickets = []
    for _ in range(n):
        category = draw_category(rng)
        tickets.append(Ticket(ticket_text(rng, category), category))
    return tickets


def draw_category(rng: random.Random) -> str:
    """A category drawn by CATEGORY_PRIORS."""
    return rng.choices(CATEGORIES, weights=[CATEGORY_PRIORS[c] for c in CATEGORIES])[0]


def ticket_text(rng: random.Random, category: str | None = None) -> str:
    """One ticket about `category` (drawn by CATEGORY_PRIORS when None)."""
    category = category if category is not None else draw_category(rng)
    if category not in TEMPLATES:
        raise ValueError(f"unknown ticket category {category!r}; known: {', '.join(CATEGORIES)}")
    roll = rng.random()
    if roll < VAGUE_SHARE:
        sentences = [rng.choice(VAGUE_TICKETS)]
        if rng.random() < 0.5:
            sentences.append(_sentence(rng, category))
    else:
        templates = rng.sample(TEMPLATES[category], _body_length(rng))
        sentences = [_fill(rng, template) for template in templates]
        if roll < VAGUE_SHARE + MIXED_SHARE:
            other = rng.choice([c for c in CATEGORIES if c != category])
            sentences.insert(rng.randint(1, len(sentences)), _sentence(rng, other))
    for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
        sentences.insert(rng.randint(0, len(sentences)), _fill(rng, rng.choice(CONTEXT)))
    parts = [rng.choice(GREETINGS), *sentences, _fill(rng, rng.choice(CLOSINGS))]
    return _style(rng, " ".join(p for p in parts if p))


def _body_length(rng: random.Random) -> int:
    return rng.choices((1, 2, 3, 4), weights=(0.45, 0.35, 0.15, 0.05))[0]


def _sentence(rng: random.Random, category: str) -> str:
    return _fill(rng, rng.choice(TEMPLATES[category]))


def _fill(rng: random.Random, template: str) -> str:
    """Replace every `{slot}` of `template` with a drawn value."""
    values = {name: rng.choice(choices) for name, choices in SLOTS.items()}
    values["order"] = rng.choice(("#", "", "no. ")) + str(rng.randint(100_000, 9_999_999))
    values["amount"] = _amount(rng)
    values["years"] = str(rng.randint(2, 12))
    values["email"] = f"{values['name'].lower()}.{rng.randint(1, 99)}@example.com"
    values["phone"] = f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
    return template.format(**values)


def _amount(rng: random.Random) -> str:
    value = rng.choice((rng.randint(5, 99), rng.randint(100, 999))) + rng.choice((0, 0.49, 0.99))
    return rng.choice(("${:.2f}", "€{:.2f}", "{:.2f} USD", "£{:.0f}")).format(value)


def _style(rng: random.Random, text: str) -> str:
    """How people really type: typos, sloppy case, missing punctuation."""
    words = [_typo(rng, w) if rng.random() < TYPO_RATE else w for w in text.split(" ")]
    text = " ".join(words)
    roll = rng.random()
    if roll < 0.12:
        text = text.lower()
    elif roll < 0.14 and len(text) < 80:
        text = text.upper()
    if rng.random() < 0.15:
        text = _SENTENCE_PUNCTUATION.sub(r"\1", text)
    return text


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:  # swapped neighbours
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == 1:  # dropped letter
        return word[:i] + word[i + 1 :]
    if kind == 2:  # doubled letter
        return word[:i] + word[i] + word[i:]
    return word[:i] + _neighbour_key(rng, word[i]) + word[i + 1 :]


def _neighbour_key(rng: random.Random, char: str) -> str:
    for row in _KEYBOARD_ROWS:
        j = row.find(char.lower())
        if j >= 0:
            return row[max(j - 1, 0)] if rng.random() < 0.5 else row[min(j + 1, len(row) - 1)]
    return char
