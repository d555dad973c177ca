-- One-time set-up of conch's database roles, run by an administrator: a
-- superuser, or on a managed PostgreSQL (RDS) its admin user (conch_admin
-- on the Terraform setup, CREATEROLE CREATEDB), connected to conch's
-- database (named conch below; any name works).
--
--   conch_owner    LOGIN: owns the database, the schema objects, every table
--                  and function. Only `conch migrate` connects as it
--                  (database_migrate_url).
--   conch_runtime  NOLOGIN group: what the server may do. Migration
--                  013_roles.sql grants it rows (SELECT, INSERT, UPDATE,
--                  DELETE) and EXECUTE, never ownership, so it cannot alter or
--                  drop a table or a policy, and Row-Level Security binds it.
--   conch          LOGIN, a member of conch_runtime: what `conch serve`
--                  connects as (database_url, database_direct_url).
--
-- None of them is superuser, BYPASSRLS, CREATEROLE or CREATEDB.
--
-- A fresh install: new passwords for both logins.
--
--   owner_pw=$(openssl rand -hex 32) runtime_pw=$(openssl rand -hex 32)
--   psql "host=$DB_HOST dbname=conch user=conch_admin sslmode=require" -1 \
--        -v owner_password="$owner_pw" -v runtime_password="$runtime_pw" \
--        -f deploy/db-bootstrap.sql
--
-- An upgrade of a live deployment whose single role `conch` owned
-- everything (docs/operations.md, "Splitting the database roles"): the same
-- command without runtime_password (the role exists and keeps its
-- password; rotate it afterwards). REASSIGN OWNED below hands every object
-- of `conch` to conch_owner and grants the rows to conch_runtime in the same
-- transaction (-1), so the running release keeps working until
-- `conch migrate` applies 013_roles.sql.
--
-- It is idempotent: running it again changes nothing (passwords of roles
-- that exist are left alone).

\set ON_ERROR_STOP on

SELECT current_database() AS dbname \gset

SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'conch_owner') AS make_owner,
       NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'conch_runtime') AS make_group,
       NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'conch') AS make_runtime
\gset

\if :make_owner
CREATE ROLE conch_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
	PASSWORD :'owner_password';
\endif
\if :make_group
CREATE ROLE conch_runtime NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
\endif
\if :make_runtime
CREATE ROLE conch LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
	PASSWORD :'runtime_password';
\endif
GRANT conch_runtime TO conch;

-- A non-superuser may hand objects only to, and take them only from, roles
-- it belongs to.
GRANT conch_owner TO CURRENT_USER;
GRANT conch TO CURRENT_USER;

-- The database, and (an upgrade) every table, sequence and function the old
-- single role owned, go to the owner. In PostgreSQL 15 the public schema
-- belongs to pg_database_owner, that is now conch_owner.
ALTER DATABASE :"dbname" OWNER TO conch_owner;
REASSIGN OWNED BY conch TO conch_owner;

REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"dbname" TO conch_runtime;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO conch_runtime;

-- An upgrade: the release still running keeps its rows until 013_roles.sql
-- applies (which sets the privileges for good, and for everything created
-- later); once it has, this grants nothing.
DO $$
BEGIN
	IF to_regclass('public.schema_migrations') IS NULL THEN
		RETURN; -- a fresh install: nothing to keep working
	END IF;
	IF NOT EXISTS (SELECT FROM public.schema_migrations WHERE version = '013_roles.sql') THEN
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO conch_runtime;
		GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO conch_runtime;
	END IF;
END $$;

-- Expect: three rows, every flag false; conch in conch_runtime; conch owns nothing.
SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,
       pg_has_role(rolname, 'conch_runtime', 'MEMBER') AS runtime
  FROM pg_roles WHERE rolname IN ('conch_owner', 'conch_runtime', 'conch') ORDER BY 1;
SELECT count(*) AS objects_owned_by_conch FROM pg_class WHERE relowner = 'conch'::regrole;
