"""The presenter's theme: high contrast, and colours a colour-blind room tells apart.

The Okabe-Ito palette (Okabe & Ito, "Color Universal Design", 2002): eight colours that
stay distinct under the common forms of colour blindness. On black: sky blue for the
parameters' frames and the loss curve, orange for an accumulating gradient (``x2 +=``),
bluish green for a fresh one, vermillion for errors, yellow for what lights up (the
phase banner). Every colour on it also comes with words (``x2 +=``, ``zeroed``), so
nothing is said by colour alone.
"""

from __future__ import annotations

from textual.theme import Theme

PRESENTER_THEME = "okabe-ito"

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

THEME = Theme(
    name=PRESENTER_THEME,
    primary=OKABE_ITO["sky_blue"],
    secondary=OKABE_ITO["reddish_purple"],
    accent=OKABE_ITO["yellow"],
    warning=OKABE_ITO["orange"],
    error=OKABE_ITO["vermillion"],
    success=OKABE_ITO["bluish_green"],
    foreground="#FFFFFF",
    background=OKABE_ITO["black"],
    surface="#101010",
    panel="#1C1C1C",
    dark=True,
    text_alpha=1.0,  # full white text, not 95%: contrast first
    variables={
        "text-muted": "#BDBDBD",  # still 11:1 on black: a projector washes out grey
        "border": OKABE_ITO["sky_blue"],
        "footer-key-foreground": OKABE_ITO["yellow"],
    },
)
