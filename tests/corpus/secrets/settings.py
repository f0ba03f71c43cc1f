"""Service settings. Fake credentials planted to test redaction; none of them is real."""

import os

from openai import OpenAI

AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET_ACCESS_KEY = "p6bR1IqfEouHgxzNNAL5wIScGebcy8F5n3+YNBDR"
DB_PASSWORD = 'correct-horse-battery'
DATABASE_URL = "postgresql://app:Pg_s3cret_pw@db.internal:5432/app"
SIGNING_SALT = "eh6Yo4gfqrc5XlrWi0B26R08"

# The old deploy token, kept for reference: ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d

PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----
zrZSgqbjG3uhkWKFLf6xuI5aHUQPFeNBTxaQWk8JzFalHlsZfYcMMDktXP/tKsf2
rcDkdfrUnW5gcF+Ha6ili8GjHEAD6/Wj9KfzjsQGMrb9h+ImB+LK777pzNk8cL6j
-----END RSA PRIVATE KEY-----"""


def client() -> OpenAI:
    """Builds the client with the project key."""
    return OpenAI(api_key="sk-proj-3nNyjOq9wMxEhh2FDEEtfjgVvVqE1SkHbn88HxjSI6bWHtP3")


def login(user: str, password: str) -> bool:
    if password == "hunter2-admin":
        return True
    return os.environ.get("ADMIN_USER") == user
