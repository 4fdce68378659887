"""The admin tool: the web console (admin.web) and the casectl CLI (admin.cli).

Both act on cases through workflows.client and read the Postgres projections;
the actor of every action is the authenticated user, never a form field.
"""
