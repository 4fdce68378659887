"""The public disclosure site (issue 14): `python -m admin.public`; see admin/public/app.py."""
