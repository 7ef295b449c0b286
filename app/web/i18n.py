"""The customer pages' words (card page, sign-up page) in English and French: a small dictionary,
chosen per request."""

from __future__ import annotations

from flask import request

LANGUAGES = ("en", "fr")

_TEXT = {
    "en": {
        "card_title": "{program} card",
        "member": "Member",
        "points": "points",
        "tier": "Tier",
        "to_next": "{points} more points to {tier}",
        "top_tier": "You are in the top tier",
        "history": "History",
        "no_history": "Nothing yet.",
        "rewards": "Rewards",
        "cost": "{points} points",
        "referral": "Invite a friend",
        "your_code": "Your code",
        "share": "Share your link",
        "wallets": "Add the card to your phone",
        "apple_wallet": "Add to Apple Wallet",
        "google_wallet": "Add to Google Wallet",
        "offers": "Offers",
        "push_button": "Get offers",
        "push_disclosure": "Send offers to this phone. You can turn them off at any time.",
        "near_me": "Offers near me",
        "near_disclosure": "Use my location while this page is open to show offers "
        "from stores near me. Positions are kept for 24 hours.",
        "near_waiting": "Looking for offers near you…",
        "near_none": "No offer near you right now.",
        "near_denied": "Location is off for this page.",
        "consents": "What we may send you",
        "consent_disclosure": "I agree to receive messages on the channels ticked "
        "here. I can change this at any time on this page.",
        "channel_push": "Notifications on this phone",
        "channel_sms": "Text messages",
        "channel_email": "Email",
        "channel_location": "Offers based on my location",
        "saved": "Saved",
        "push_stop": "Turn offers off",
        # The sign-up page /join
        "join_title": "Join {program}",
        "join_intro": "Get your {program} card on your phone in a minute.",
        "join_signup_bonus": "You get {points} points as soon as you join.",
        "first_name": "First name",
        "last_name": "Last name",
        "email": "Email",
        "phone": "Mobile phone",
        "phone_hint": "In international format, such as +44 7700 900123.",
        "contact_hint": "Give an email address, a phone number or both.",
        "join_channels": "How may we send you offers?",
        "channel_voice": "Voice messages",
        "join_consent": "I agree to receive offers and news from {program} on the channels I have ticked. "
        "I can change this at any time on my card page. For text messages, reply STOP to stop.",
        "referral_code": "Invitation code (optional)",
        "referral_known": "A friend invited you: after your first purchase you get {referee} bonus points, "
        "and so does your friend.",
        "referral_known_plain": "A friend invited you.",
        "referral_unknown": "The invitation code “{code}” is not known. You can still join without it, "
        "or type the right code below.",
        "join_submit": "Create my card",
        "join_working": "Creating your card…",
        "join_failed": "Your card could not be created:",
        "join_offline": "The server could not be reached. Check your connection and try again.",
        "join_noscript": "Scripts are off: the form is sent the plain way, which works just as well.",
        "too_many": "Too many attempts from this connection. Please try again in a few minutes.",
    },
    "fr": {
        "card_title": "Carte {program}",
        "member": "Membre",
        "points": "points",
        "tier": "Niveau",
        "to_next": "Encore {points} points pour {tier}",
        "top_tier": "Vous êtes au niveau le plus élevé",
        "history": "Historique",
        "no_history": "Rien pour l’instant.",
        "rewards": "Récompenses",
        "cost": "{points} points",
        "referral": "Parrainez un ami",
        "your_code": "Votre code",
        "share": "Partager votre lien",
        "wallets": "Ajoutez la carte à votre téléphone",
        "apple_wallet": "Ajouter à Apple Wallet",
        "google_wallet": "Ajouter à Google Wallet",
        "offers": "Offres",
        "push_button": "Recevoir les offres",
        "push_disclosure": "Envoyer des offres sur ce téléphone. Vous pouvez les désactiver à tout moment.",
        "near_me": "Offres près de moi",
        "near_disclosure": "Utiliser ma position tant que cette page est ouverte "
        "pour afficher les offres des magasins proches. Les positions sont conservées 24 heures.",
        "near_waiting": "Recherche des offres près de vous…",
        "near_none": "Aucune offre près de vous pour le moment.",
        "near_denied": "La localisation est désactivée pour cette page.",
        "consents": "Ce que nous pouvons vous envoyer",
        "consent_disclosure": "J’accepte de recevoir des messages sur "
        "les canaux cochés ici. Je peux changer d’avis à tout moment sur cette page.",
        "channel_push": "Notifications sur ce téléphone",
        "channel_sms": "SMS",
        "channel_email": "E-mail",
        "channel_location": "Offres selon ma position",
        "saved": "Enregistré",
        "push_stop": "Ne plus recevoir les offres",
        "join_title": "Rejoindre {program}",
        "join_intro": "Votre carte {program} sur votre téléphone en une minute.",
        "join_signup_bonus": "Vous recevez {points} points dès l’inscription.",
        "first_name": "Prénom",
        "last_name": "Nom",
        "email": "E-mail",
        "phone": "Téléphone mobile",
        "phone_hint": "Au format international, par exemple +33 6 12 34 56 78.",
        "contact_hint": "Indiquez une adresse e-mail, un numéro de téléphone ou les deux.",
        "join_channels": "Comment pouvons-nous vous envoyer nos offres ?",
        "channel_voice": "Messages vocaux",
        "join_consent": "J’accepte de recevoir les offres et actualités de {program} sur les canaux cochés. "
        "Je peux changer d’avis à tout moment sur la page de ma carte. Pour les SMS, répondez STOP pour arrêter.",
        "referral_code": "Code de parrainage (facultatif)",
        "referral_known": "Un ami vous a parrainé : après votre premier achat, vous recevez {referee} points "
        "de bienvenue, et votre ami aussi.",
        "referral_known_plain": "Un ami vous a parrainé.",
        "referral_unknown": "Le code de parrainage « {code} » est inconnu. Vous pouvez vous inscrire sans, "
        "ou saisir le bon code ci-dessous.",
        "join_submit": "Créer ma carte",
        "join_working": "Création de votre carte…",
        "join_failed": "Votre carte n’a pas pu être créée :",
        "join_offline": "Le serveur est injoignable. Vérifiez votre connexion et réessayez.",
        "join_noscript": "Les scripts sont désactivés : le formulaire est envoyé simplement, cela fonctionne aussi.",
        "too_many": "Trop de tentatives depuis cette connexion. Réessayez dans quelques minutes.",
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
