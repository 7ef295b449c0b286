"""The card page's words in English and French: a small dictionary, chosen per request."""

from __future__ import annotations

from flask import request

LANGUAGES = ("en", "fr")

_TEXT = {
    "en": {
        "card_title": "{program} card", "member": "Member", "points": "points", "tier": "Tier",
        "to_next": "{points} more points to {tier}", "top_tier": "You are in the top tier",
        "history": "History", "no_history": "Nothing yet.", "rewards": "Rewards",
        "cost": "{points} points", "referral": "Invite a friend", "your_code": "Your code",
        "share": "Share your link", "wallets": "Add the card to your phone",
        "apple_wallet": "Add to Apple Wallet", "google_wallet": "Add to Google Wallet",
        "offers": "Offers", "push_button": "Get offers",
        "push_disclosure": "Send offers to this phone. You can turn them off at any time.",
        "near_me": "Offers near me", "near_disclosure": "Use my location while this page is open to show offers "
        "from stores near me. Positions are kept for 24 hours.",
        "near_waiting": "Looking for offers near you…", "near_none": "No offer near you right now.",
        "near_denied": "Location is off for this page.",
        "consents": "What we may send you", "consent_disclosure": "I agree to receive messages on the channels ticked "
        "here. I can change this at any time on this page.",
        "channel_push": "Notifications on this phone", "channel_sms": "Text messages", "channel_email": "Email",
        "channel_location": "Offers based on my location", "saved": "Saved",
    },
    "fr": {
        "card_title": "Carte {program}", "member": "Membre", "points": "points", "tier": "Niveau",
        "to_next": "Encore {points} points pour {tier}", "top_tier": "Vous êtes au niveau le plus élevé",
        "history": "Historique", "no_history": "Rien pour l’instant.", "rewards": "Récompenses",
        "cost": "{points} points", "referral": "Parrainez un ami", "your_code": "Votre code",
        "share": "Partager votre lien", "wallets": "Ajoutez la carte à votre téléphone",
        "apple_wallet": "Ajouter à Apple Wallet", "google_wallet": "Ajouter à Google Wallet",
        "offers": "Offres", "push_button": "Recevoir les offres",
        "push_disclosure": "Envoyer des offres sur ce téléphone. Vous pouvez les désactiver à tout moment.",
        "near_me": "Offres près de moi", "near_disclosure": "Utiliser ma position tant que cette page est ouverte "
        "pour afficher les offres des magasins proches. Les positions sont conservées 24 heures.",
        "near_waiting": "Recherche des offres près de vous…", "near_none": "Aucune offre près de vous pour le moment.",
        "near_denied": "La localisation est désactivée pour cette page.",
        "consents": "Ce que nous pouvons vous envoyer", "consent_disclosure": "J’accepte de recevoir des messages sur "
        "les canaux cochés ici. Je peux changer d’avis à tout moment sur cette page.",
        "channel_push": "Notifications sur ce téléphone", "channel_sms": "SMS", "channel_email": "E-mail",
        "channel_location": "Offres selon ma position", "saved": "Enregistré",
    },
}


def pick_language() -> str:
    """?lang= first (a link can force it), else the browser's Accept-Language, else English."""
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        return asked
    return request.accept_languages.best_match(LANGUAGES) or "en"


def translator(language: str):
    words = _TEXT[language]

    def t(key: str, **values) -> str:
        return words[key].format(**values)

    return t
