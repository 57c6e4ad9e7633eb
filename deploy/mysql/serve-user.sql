-- Step 3 of 3 (deploy/README.md, "MariaDB"): the least-privilege account
-- of `eventsource serve` (MYSQL_USER, MYSQL_PASS). Run it as an
-- administrator after `eventsource migrate` (table grants need the
-- tables), with your own password, database name and host pattern:
--
--   mariadb -u root -p < deploy/mysql/serve-user.sql
--
--   the database          SHOW VIEW: reads and changes no data, but
--                         MariaDB's information_schema.CHECK_CONSTRAINTS
--                         shows the json_valid() check that marks `data`
--                         as JSON (MariaDB's JSON is LONGTEXT) only to an
--                         account with a privilege on the whole database;
--                         with table grants alone, every persist of an
--                         object in `data` is refused as bad_request.
--   event                 SELECT, INSERT: fetches, follows, reading back
--                         a retried persist; persists. No UPDATE or DELETE:
--                         append-only.
--   event_stream          nothing more: the trigger `event_version` writes
--                         it with its definer's privileges (the migrate
--                         account's).
--   eventsource_consumer  INSERT, UPDATE, DELETE: durable consumers are
--                         created, locked FOR UPDATE, their positions and
--                         leases recorded, and deleted by DELETE
--                         /consumers/{name} on the admin listener.
--
-- Tables added to --tables need INSERT to be written through the server
-- (UPDATE too when in --writable-tables); grant them the same way.
CREATE USER IF NOT EXISTS 'eventsource'@'10.0.0.%' IDENTIFIED BY 'CHANGE-ME-serve';
GRANT SELECT, INSERT ON `eventsource`.`event` TO 'eventsource'@'10.0.0.%';
GRANT SELECT, INSERT, UPDATE, DELETE ON `eventsource`.`eventsource_consumer` TO 'eventsource'@'10.0.0.%';
GRANT SHOW VIEW ON `eventsource`.* TO 'eventsource'@'10.0.0.%';
