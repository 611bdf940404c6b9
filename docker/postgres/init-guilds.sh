#!/bin/sh
# Runs once, when the postgres volume is first initialised: the bridge's own role and database,
# beside Synapse's (POSTGRES_USER/POSTGRES_DB). The password comes from GUILDS_DB_PASSWORD.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v guilds_password="$GUILDS_DB_PASSWORD" <<'SQL'
CREATE ROLE guilds LOGIN PASSWORD :'guilds_password';
CREATE DATABASE guilds OWNER guilds ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
SQL
