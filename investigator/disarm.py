"""DISARM Red Framework technique ids used to tag case evidence.

The catalogue below names the techniques that coordinated-inauthentic-behaviour cases meet most
(https://github.com/DISARMFoundation/DISARMframeworks). Any well-formed id is accepted as a tag,
so newer techniques can be used before they are listed here; listed ones are shown with their name.
"""

from __future__ import annotations

import re

DISARM_ID = re.compile(r"T\d{4}(?:\.\d{3})?")

TECHNIQUES: dict[str, str] = {
    "T0049": "Flood Information Space",
    "T0049.003": "Bots Amplify via Automated Forwarding and Reposting",
    "T0049.005": "Conduct Swarming",
    "T0084": "Reuse Existing Content",
    "T0084.001": "Use Copypasta",
    "T0084.002": "Plagiarise Content",
    "T0086.003": "Deceptively Edit Images (Cheap Fakes)",
    "T0090": "Create Inauthentic Accounts",
    "T0090.003": "Create Bot Accounts",
    "T0090.004": "Create Sockpuppet Accounts",
    "T0118": "Amplify Existing Narrative",
    "T0121": "Manipulate Platform Algorithm",
    "T0143.002": "Fabricated Persona",
    "T0143.003": "Impersonated Persona",
    "T0145.001": "Copy Account Imagery",
    "T0150.001": "Newly Created Asset",
}


def technique_name(tag: str) -> str:
    return TECHNIQUES.get(tag, "")
