from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import get_settings

wallet_cli = AppGroup("wallet", help="Apple and Google Wallet.")


@wallet_cli.command("dev-certs")
@click.option("--force", is_flag=True, help="Replace existing development credentials.")
def dev_certs(force: bool) -> None:
    """Create throwaway signing credentials so passes and save links work locally."""
    settings = get_settings()
    for name, module in (("apple", "app.wallet.apple.dev"), ("google", "app.wallet.google.dev")):
        try:
            create = __import__(module, fromlist=["create_dev_credentials"]).create_dev_credentials
        except ImportError:
            continue  # that wallet is not built yet
        click.echo(f"{name}: {create(settings, force=force)}")
