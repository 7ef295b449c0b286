"""Voicemail drops through Twilio: a call with answering-machine detection, and its TwiML.

The call is placed with asynchronous AMD that waits for the end of the greeting
(DetectMessageEnd). Twilio fetches the TwiML as soon as someone or something answers; with
async AMD the answer is not known yet, so that first TwiML greets at once (no dead air: a
silent line is an abandoned call) and holds. When AMD reports, the call is redirected to the
same TwiML with its verdict: after a machine's beep the recording plays; a person hears a
short live message with a key to opt out; a fax is hung up on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from twilio.twiml.voice_response import Gather, VoiceResponse

from app.messaging.config import MessagingSettings
from app.messaging.models import Message
from app.messaging.providers import ConsoleSender, Sender
from app.messaging.twilio_client import TwilioSender, make_twilio_sender, outbox_error, webhook_url

if TYPE_CHECKING:
    from app.wiring import Services

log = logging.getLogger("pointcard.messages")

OPT_OUT_DIGIT = "9"
MACHINE_END = ("machine_end_beep", "machine_end_silence", "machine_end_other")
TWIML_PATH = "/webhooks/twilio/voice/twiml"


class TwilioVoiceSender(TwilioSender):
    required_setting = "twilio_voice_from"

    def create(self, client, phone: str, message: Message) -> str:
        return client.calls.create(
            to=phone,
            from_=self.messaging.twilio_voice_from,
            url=webhook_url(self.settings, TWIML_PATH, m=message.id),
            method="POST",
            machine_detection="DetectMessageEnd",
            async_amd="true",
            async_amd_status_callback=webhook_url(self.settings, "/webhooks/twilio/voice/amd", m=message.id),
            async_amd_status_callback_method="POST",
            machine_detection_timeout=self.messaging.voice_machine_detection_timeout,
            status_callback=webhook_url(self.settings, "/webhooks/twilio/voice/status", m=message.id),
            status_callback_method="POST",
            timeout=self.messaging.voice_ring_timeout,
        ).sid

    def redirect(self, call_sid: str, url: str) -> None:
        """Send a live call to new TwiML (the AMD verdict arrived)."""
        client = self.clients.get()
        try:
            client.calls(call_sid).update(url=url, method="POST")
        except Exception as exc:
            raise outbox_error(exc, client) from exc


@runtime_checkable
class SteersCalls(Protocol):
    """The voice channel's senders also steer a call in progress (to the message after the beep)."""

    def redirect(self, call_sid: str, url: str) -> None: ...


class ConsoleVoice(ConsoleSender):
    def redirect(self, call_sid: str, url: str) -> None:
        log.info("[voice] call %s redirected to %s", call_sid, url)


def make_voice_sender(services: Services) -> Sender:
    return make_twilio_sender(
        services.settings,
        backend=services.settings.messaging.voice_backend,
        real=TwilioVoiceSender,
        console=ConsoleVoice,
    )


# --- TwiML ------------------------------------------------------------------------------------


def _say(response: VoiceResponse | Gather, text: str, messaging: MessagingSettings) -> None:
    response.say(text, language=messaging.voice_language)


def identification(*, business: str, messaging: MessagingSettings) -> str:
    number = messaging.voice_opt_out_number or messaging.twilio_voice_from or ""
    spoken = " ".join(number.lstrip("+")) if number else ""
    how = f"call {spoken} and press {OPT_OUT_DIGIT}" if spoken else "reply STOP to our texts"
    return f"This message is from {business}. To stop these calls, {how}."


def hold_twiml(*, business: str, messaging: MessagingSettings) -> str:
    """While AMD listens: greet at once, then wait for the verdict's redirect."""
    response = VoiceResponse()
    _say(response, f"Hello, this is {business}.", messaging)
    response.pause(length=messaging.voice_machine_detection_timeout)
    response.hangup()
    return str(response)


def voicemail_twiml(*, content: dict, business: str, recording_url: str | None, messaging: MessagingSettings) -> str:
    response = VoiceResponse()
    if recording_url:
        response.play(recording_url)
    else:
        _say(response, str(content.get("script") or ""), messaging)
    _say(response, identification(business=business, messaging=messaging), messaging)
    response.hangup()
    return str(response)


def live_twiml(*, content: dict, business: str, first_name: str, opt_out_url: str, messaging: MessagingSettings) -> str:
    """A person answered: a short message, and a key that stops these calls."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=opt_out_url, method="POST", timeout=5)
    text = str(content.get("live_script") or f"Hi {first_name}, {business} has a new offer for you on your card.")
    _say(gather, f"{text} This call is from {business}. To stop these calls, press {OPT_OUT_DIGIT} now.", messaging)
    response.append(gather)
    _say(response, "Thank you. Goodbye.", messaging)
    response.hangup()
    return str(response)


def hangup_twiml() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def said_twiml(text: str, messaging: MessagingSettings) -> str:
    response = VoiceResponse()
    _say(response, text, messaging)
    response.hangup()
    return str(response)


def opt_out_menu_twiml(*, business: str, action_url: str, messaging: MessagingSettings) -> str:
    """Someone calls the opt-out number."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=action_url, method="POST", timeout=8)
    _say(gather, f"You have reached {business}. To stop our calls to this number, press {OPT_OUT_DIGIT}.", messaging)
    response.append(gather)
    response.hangup()
    return str(response)
