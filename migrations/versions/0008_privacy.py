"""privacy: encrypted contact fields, blind indexes, erasure

Existing e-mail addresses and phone numbers are encrypted here, with the keyring the
environment configures (POINTCARD_PRIVACY__*; in development the keys in instance/), and
their blind indexes computed; the unique constraints move to the indexes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 17:30:00
"""
from alembic import op
import sqlalchemy as sa
import app.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('phone_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('erased_at', app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column('email', existing_type=sa.String(length=254), type_=sa.String(length=512))
        batch_op.alter_column('phone', existing_type=sa.String(length=20), type_=sa.String(length=512))
        batch_op.drop_constraint('uq_customers_program_email', type_='unique')
        batch_op.drop_constraint('uq_customers_program_phone', type_='unique')
    _rewrite_contacts(_encrypt)
    with op.batch_alter_table('customers', schema=None) as batch_op:
        # Index column first, so lookups by the index alone (an inbound STOP) use it too.
        batch_op.create_unique_constraint('uq_customers_program_email_index', ['email_index', 'program_id'])
        batch_op.create_unique_constraint('uq_customers_program_phone_index', ['phone_index', 'program_id'])


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint('uq_customers_program_email_index', type_='unique')
        batch_op.drop_constraint('uq_customers_program_phone_index', type_='unique')
    _rewrite_contacts(_decrypt)
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
        batch_op.drop_column('phone_index')
        batch_op.drop_column('email_index')
        batch_op.alter_column('phone', existing_type=sa.String(length=512), type_=sa.String(length=20))
        batch_op.alter_column('email', existing_type=sa.String(length=512), type_=sa.String(length=254))
        batch_op.create_unique_constraint('uq_customers_program_email', ['program_id', 'email'])
        batch_op.create_unique_constraint('uq_customers_program_phone', ['program_id', 'phone'])


def _encrypt(keyring, column: str, value: str) -> dict:
    if value.startswith('v1.'):  # already encrypted (a re-run after a partial upgrade)
        value = keyring.decrypt(value, column=f'customers.{column}')
    return {column: keyring.encrypt(value, column=f'customers.{column}'),
            f'{column}_index': keyring.blind_index(value, column=f'customers.{column}')}


def _decrypt(keyring, column: str, value: str) -> dict:
    return {column: keyring.decrypt(value, column=f'customers.{column}')}


def _rewrite_contacts(rewrite) -> None:
    from app.encryption import keyring

    connection, ring, last_id = op.get_bind(), keyring(), 0
    while True:
        rows = connection.execute(
            sa.text('SELECT id, email, phone FROM customers WHERE id > :last AND '
                    '(email IS NOT NULL OR phone IS NOT NULL) ORDER BY id LIMIT :n'),
            {'last': last_id, 'n': BATCH}).all()
        if not rows:
            return
        for row_id, email, phone in rows:
            values = {}
            for column, value in (('email', email), ('phone', phone)):
                if value is not None:
                    values.update(rewrite(ring, column, value))
            assignments = ', '.join(f'{name} = :{name}' for name in values)
            connection.execute(sa.text(f'UPDATE customers SET {assignments} WHERE id = :id'), {**values, 'id': row_id})
        last_id = rows[-1][0]
