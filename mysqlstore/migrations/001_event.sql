-- The original eventsource schema, plus `id` as the last column: cursors page
-- on a unique key, and appending the column keeps the original column order
-- of `SELECT *` rows. eventId and version serve safe writes (see versions.go):
-- INVISIBLE, they leave `SELECT *` as it was.
CREATE TABLE IF NOT EXISTS `{{db}}`.`event` (
  `timestamp` DATETIME(6) NOT NULL DEFAULT NOW(6),
  `pid`       VARCHAR(200) NOT NULL,
  `domain`    VARCHAR(200) NOT NULL,
  `name`      VARCHAR(200) NOT NULL,
  `data`      JSON NULL,
  `id`        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `eventId`   VARBINARY(64) NULL INVISIBLE,
  `version`   BIGINT NULL INVISIBLE,
  UNIQUE KEY `eventId` (`eventId`),
  KEY `timestamp` (`timestamp`),
  KEY `pid` (`pid`),
  KEY `domain` (`domain`),
  KEY `name` (`name`),
  KEY `domain_name` (`domain`, `name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
