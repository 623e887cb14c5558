"""gunicorn settings for the API (``gunicorn -c python:app.web.gunicorn_config``; Procfile, make up).

Request-size limits sit just above the app's own (``app.web.MAX_TARGET_BYTES`` and
``MAX_HEADER_BYTES``), so that an oversized request reaching the app gets a 414/431 in its
dialect's format. What gunicorn still answers itself, as a plain-text/HTML page, before the app
sees anything: a request line over 8190 bytes (414), a header line over 8190 bytes or more than
100 headers (400 "Request Header Fields Too Large"), and malformed HTTP (400). 8190 is the most
gunicorn allows for a request line.
"""

limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 100

# The API's logs (access lines included) in OPENMPS_LOG_FORMAT, set up once in the master before
# it forks its workers. A bad setting stops gunicorn here with the variable named.
from app import logs  # noqa: E402
from app.settings import Settings  # noqa: E402

logs.configure(Settings.from_env().log_format)
