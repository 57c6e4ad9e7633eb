-- Seed for the peer examples (examples.json): every table and column the
-- examples ours is compared on name, in database {{db}}. sqlbuild/peer_test.go
-- replaces {{db}} with the fresh database of referenceDatabase (es_ref_<hex>,
-- dropped at the end) and allows all these tables.
--
-- default_row is the catalog's default table, which ours reads when a
-- query has no $from: one row and a column no example names, so a select
-- of expressions gives one row, as the reference's SELECT without FROM does.
--
-- The rows hold NULLs, duplicate values, join keys with and without a
-- match, and a NULL join key. last_name is unique (one NULL): the examples
-- order people by last_name first, and ties would leave the order of rows
-- to the server. 100 filler people (people_id 101..200) let LIMIT 10
-- OFFSET 100 read rows.
CREATE DATABASE IF NOT EXISTS `{{db}}`;

CREATE TABLE `{{db}}`.`default_row` (
  `default_row_id` INT NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO `{{db}}`.`default_row` VALUES (1);

CREATE TABLE `{{db}}`.`people` (
  `people_id`     INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `id`            INT NULL,
  `first_name`    VARCHAR(100) NULL,
  `last_name`     VARCHAR(100) NULL,
  `age`           INT NULL,
  `job_title`     VARCHAR(100) NULL,
  `staff_no`      INT NULL,
  `date_of_birth` DATE NULL,
  `skill_id`      INT NULL,
  `hobbies`       JSON NULL,
  `json_str`      JSON NULL,
  `json_bool`     JSON NULL,
  `json_num`      JSON NULL,
  UNIQUE KEY `staff_no` (`staff_no`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO `{{db}}`.`people`
  (`people_id`, `id`, `first_name`, `last_name`, `age`, `job_title`, `staff_no`, `date_of_birth`, `skill_id`, `hobbies`, `json_str`, `json_bool`, `json_num`) VALUES
  (1,      10,   'John',  'Doe',      100,  'Engineer', 1,    '2002-02-02', 1,    '["football","chess"]', '"text"', 'true', '7'),
  (2,      20,   'Jane',  'Dawson',   35,   'Manager',  2,    '2001-02-03', 3,    '{"swimming":"good"}',  NULL,     'false', NULL),
  (3,      30,   'Joe',   'Smith',    18,   'Engineer', 3,    '2005-07-07', 1,    NULL,                   NULL,     NULL,    NULL),
  (4,      NULL, 'Joan',  'Roe',      40,   NULL,       4,    '1984-01-01', NULL, NULL,                   NULL,     NULL,    NULL),
  (5,      50,   NULL,    'Nobody',   NULL, 'Clerk',    NULL, NULL,         2,    '[]',                   NULL,     NULL,    NULL),
  (6,      60,   'Smith', 'Kowalski', 25,   'Clerk',    6,    '2000-01-01', 5,    NULL,                   NULL,     NULL,    NULL),
  (7,      70,   'Jason', 'Brown',    18,   'Engineer', 7,    '1999-12-31', 1,    NULL,                   NULL,     NULL,    NULL),
  (8,      80,   'Anna',  NULL,       52,   'Manager',  8,    '1971-03-03', NULL, NULL,                   NULL,     NULL,    NULL),
  (9,      90,   'Kim',   'Kim',      12,   NULL,       9,    '2003-03-03', 2,    NULL,                   NULL,     NULL,    NULL),
  (10,     100,  'John',  'Moe',      61,   'Driver',   10,   '1962-06-06', 4,    NULL,                   NULL,     NULL,    NULL),
  (456725, NULL, 'Jane',  'Jones',    29,   'Driver',   11,   '1995-05-05', 3,    NULL,                   NULL,     NULL,    NULL);

INSERT INTO `{{db}}`.`people`
  (`people_id`, `id`, `first_name`, `last_name`, `age`, `job_title`, `staff_no`, `date_of_birth`, `skill_id`)
WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
SELECT 100 + i, 1000 + i, CONCAT('Filler', i % 7), CONCAT('Filler-', LPAD(i, 3, '0')), 20 + i % 50,
  ELT(1 + i % 3, 'Engineer', 'Clerk', NULL), 100 + i, DATE_ADD('1990-01-01', INTERVAL i * 97 DAY), 1 + i % 6
FROM n;

CREATE TABLE `{{db}}`.`people_skills` (
  `people_id`    INT NULL,
  `skill_id`     INT NULL,
  `skill`        VARCHAR(100) NULL,
  `description`  VARCHAR(100) NULL,
  `rate`         INT NULL,
  `rate_id`      INT NULL,
  `skill_points` INT NULL,
  `is_skill`     TINYINT NULL,
  `is_top`       TINYINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- At most one is_top = 1 per person: a sub-select of the top skill in the
-- column list must give one row at most.
INSERT INTO `{{db}}`.`people_skills` VALUES
  (1,    1, 'go',     'Go programming', 80,   1,    150,  1, 1),
  (1,    2, 'sql',    'SQL',            40,   2,    90,   1, 0),
  (2,    3, 'chess',  'Chess',          95,   1,    120,  1, 1),
  (2,    2, 'sql',    'SQL',            60,   3,    50,   0, 0),
  (3,    1, 'go',     'Go programming', 55,   NULL, 101,  1, 1),
  (6,    5, 'piano',  'Piano',          NULL, 4,    NULL, 0, 1),
  (7,    1, 'go',     'Go programming', 51,   9,    10,   1, 0),
  (9,    2, 'sql',    'SQL',            75,   2,    100,  1, 1),
  (999,  4, 'ghost',  'Nobody''s skill', 70,  2,    200,  1, 1),
  (NULL, 6, 'juggle', 'Juggling',       90,   1,    5,    1, 0),
  (105,  6, 'juggle', 'Juggling',       65,   3,    130,  NULL, 0);

CREATE TABLE `{{db}}`.`skill_ratings` (
  `rate_id`         INT NOT NULL PRIMARY KEY,
  `description`     VARCHAR(100) NULL,
  `is_people_skill` TINYINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO `{{db}}`.`skill_ratings` VALUES
  (1, 'excellent', 1),
  (2, 'average',   1),
  (3, 'poor',      0),
  (4, NULL,        1),
  (5, 'unused',    1);

CREATE TABLE `{{db}}`.`sales_pipline` (
  `state` VARCHAR(10) NULL,
  `city`  VARCHAR(50) NULL,
  `sales` INT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO `{{db}}`.`sales_pipline` VALUES
  ('CA', 'Los Angeles',   100),
  ('CA', 'Los Angeles',   50),
  ('CA', 'San Francisco', 70),
  ('NY', 'New York',      200),
  ('NY', NULL,            30),
  ('TX', 'Austin',        NULL);

CREATE TABLE `{{db}}`.`people_history` (
  `history_id`  INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `first_name`  VARCHAR(100) NULL,
  `last_name`   VARCHAR(100) NULL,
  `age`         INT NULL,
  `recorded_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO `{{db}}`.`people_history` (`first_name`, `last_name`, `age`, `recorded_at`) VALUES
  ('John', 'Doe', 99, '2020-01-01 00:00:00');

CREATE TABLE `{{db}}`.`peoples_after_1999_named_doe` (
  `people_id`  INT NULL,
  `first_name` VARCHAR(100) NULL,
  `last_name`  VARCHAR(100) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
