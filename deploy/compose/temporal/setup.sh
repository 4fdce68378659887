#!/bin/sh
# Runs in temporalio/admin-tools before the engine starts (compose service temporal-setup).
# Idempotent: creating what exists is skipped, schema updates apply only missing versions.
set -eu
SCHEMA=/etc/temporal/schema/postgresql/v12
sql() { temporal-sql-tool --plugin "$SQL_PLUGIN" --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" \
        --tls --tls-ca-file "$SQL_TLS_CA_FILE" --tls-server-name "$SQL_HOST" "$@"; }

for db in temporal temporal_visibility; do
  sql --db "$db" create || true   # "already exists" on later runs
done
sql --db temporal setup-schema -v 0.0 || true
sql --db temporal update-schema -d "$SCHEMA/temporal/versioned"
sql --db temporal_visibility setup-schema -v 0.0 || true
sql --db temporal_visibility update-schema -d "$SCHEMA/visibility/versioned"

# Wait for the frontend, then the namespace and the engine's search attributes.
export TEMPORAL_TLS_SERVER_CA_CERT_PATH="$TEMPORAL_TLS_CA" TEMPORAL_TLS_CLIENT_CERT_PATH="$TEMPORAL_TLS_CERT" \
       TEMPORAL_TLS_CLIENT_KEY_PATH="$TEMPORAL_TLS_KEY"
until temporal operator cluster health >/dev/null 2>&1; do sleep 2; done
temporal operator namespace describe -n "$TEMPORAL_NAMESPACE" >/dev/null 2>&1 ||
  temporal operator namespace create -n "$TEMPORAL_NAMESPACE" --retention "$NAMESPACE_RETENTION"
for sa in CaseStage=Keyword CaseKind=Keyword ResponsibleUnits=KeywordList \
          CaseDueAt=Datetime EscalationRung=Int InspectionRound=Keyword CaseBlocked=Keyword; do
  temporal operator search-attribute create -n "$TEMPORAL_NAMESPACE" --name "${sa%%=*}" --type "${sa##*=}" \
    2>/dev/null || true   # exists already
done
echo "temporal-setup: schemas, namespace $TEMPORAL_NAMESPACE and search attributes in place"
