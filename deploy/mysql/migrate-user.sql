-- Step 1 of 3 (deploy/README.md, "MariaDB"): the account that runs
-- `eventsource migrate`, for the database `eventsource` (MYSQL_DATABASE)
-- and hosts on 10.0.0.0/24. Run it as an administrator on the primary,
-- with your own password, database name and host pattern:
--
--   mariadb -u root -p < deploy/mysql/migrate-user.sql
--
-- Step 2: MYSQL_USER=eventsource_migrate MYSQL_PASS=... eventsource migrate
-- Step 3: serve-user.sql (its grants name the tables migrate made).
--
-- Migrate creates the database, the tables `event`, `event_stream` and
-- `eventsource_consumer` and the trigger `event_version`; on a table of an
-- earlier release it alters it, builds indexes, and numbers the stored
-- events (UPDATE, with a temporary table of counts).
--
-- Keep this account (lock it between migrations if you like, never drop
-- it): it is the DEFINER of the trigger, which runs with its privileges on
-- every insert; dropped, every persist fails. With binary logging on (a
-- primary with replicas), creating the trigger also needs SUPER, or
-- log_bin_trust_function_creators=1 on the server while migrate runs.
--
-- deploy/mysql/grants_test.go runs this file and serve-user.sql (names
-- replaced) against the local MariaDB.
CREATE USER IF NOT EXISTS 'eventsource_migrate'@'10.0.0.%' IDENTIFIED BY 'CHANGE-ME-migrate';
GRANT CREATE, ALTER, INDEX, TRIGGER, CREATE TEMPORARY TABLES, SELECT, INSERT, UPDATE
  ON `eventsource`.* TO 'eventsource_migrate'@'10.0.0.%';
