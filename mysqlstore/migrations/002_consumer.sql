-- Durable consumers (consumers.go): where each named consumer got to in its
-- query, and which stream holds it. The name is binary so that names
-- compare exactly; held_until is the lease on the database's clock.
CREATE TABLE IF NOT EXISTS `{{db}}`.`eventsource_consumer` (
  `name`       VARBINARY(200) NOT NULL PRIMARY KEY,
  `query`      MEDIUMTEXT NOT NULL,
  `position`   BIGINT NOT NULL DEFAULT 0,
  `server`     VARCHAR(100) NULL,
  `holder`     VARCHAR(300) NULL,
  `held_until` DATETIME(6) NULL,
  `updated_at` DATETIME(6) NOT NULL DEFAULT NOW(6),
  KEY `server` (`server`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
