-- One-time set-up of the role conch connects as, on a managed PostgreSQL
-- (RDS) whose admin user is not a true superuser. Run it as that admin
-- user (conch_admin on the Terraform setup), connected to the conch
-- database, with the new role's password in a psql variable:
--
--   pw=$(openssl rand -hex 32)
--   psql "host=$DB_HOST dbname=conch user=conch_admin sslmode=require" \
--        -v conch_password="$pw" -f deploy/db-bootstrap.sql
--
-- then store postgresql://conch:$pw@$DB_HOST:5432/conch?sslmode=require as
-- database_url. The role owns the schema (migrations create the tables)
-- but is neither superuser nor BYPASSRLS, so the FORCEd Row-Level Security
-- policies bind it: a query that forgot its team sees no rows.

\set ON_ERROR_STOP on

CREATE ROLE conch LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
	PASSWORD :'conch_password';

-- A non-superuser may hand a database only to a role it belongs to.
GRANT conch TO CURRENT_USER;
ALTER DATABASE conch OWNER TO conch;
REVOKE ALL ON DATABASE conch FROM PUBLIC;

-- PostgreSQL 15: the public schema belongs to pg_database_owner, that is
-- now conch, so migrations may create in it and nobody else may.

SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb
FROM pg_roles WHERE rolname = 'conch';
