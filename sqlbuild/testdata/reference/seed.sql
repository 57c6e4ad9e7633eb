-- Seed for the reference corpus (cases.json / golden.json): the event table
-- of mysqlstore/migrations/001_event.sql and 30 fixed rows in database {{db}}.
-- sqlbuild/reference_test.go replaces {{db}} with a fresh es_ref_<hex>.
-- No NULLs in the rows (data may hold NULL, as in the migrated table); timestamps unique and spread over 2024-03-01 .. 2024-03-10;
-- ids explicit (1..30) so every run sees the same rows.
CREATE DATABASE IF NOT EXISTS `{{db}}`;

CREATE TABLE `{{db}}`.`event` (
  `timestamp` DATETIME(6) NOT NULL DEFAULT NOW(6),
  `pid`       VARCHAR(200) NOT NULL,
  `domain`    VARCHAR(200) NOT NULL,
  `name`      VARCHAR(200) NOT NULL,
  `data`      JSON NULL,
  `id`        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  KEY `timestamp` (`timestamp`),
  KEY `pid` (`pid`),
  KEY `domain` (`domain`),
  KEY `name` (`name`),
  KEY `domain_name` (`domain`, `name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO `{{db}}`.`event` (`id`, `timestamp`, `pid`, `domain`, `name`, `data`) VALUES
  (1,  '2024-03-01 09:00:00.000000', 'order-1', 'shop', 'created',      '{"total":42.5,"items":2,"currency":"EUR","customer":{"id":"c-1","tier":"gold"}}'),
  (2,  '2024-03-01 09:05:30.250000', 'order-1', 'shop', 'paid',         '{"method":"card","amount":42.5}'),
  (3,  '2024-03-01 10:15:00.000000', 'order-2', 'shop', 'created',      '{"total":18,"items":1,"currency":"EUR","customer":{"id":"c-2","tier":"silver"}}'),
  (4,  '2024-03-01 11:00:00.000000', 'user-1',  'user', 'registered',   '{"email":"ada@example.com","name":{"first":"Ada","last":"Lovelace"},"age":36}'),
  (5,  '2024-03-02 08:30:00.000000', 'order-1', 'shop', 'shipped',      '{"carrier":"dhl","parcels":1}'),
  (6,  '2024-03-02 09:45:10.500000', 'order-2', 'shop', 'paid',         '{"method":"paypal","amount":18}'),
  (7,  '2024-03-02 12:00:00.000000', 'cart-1',  'cart', 'item-added',   '{"sku":"sku-100","qty":2,"price":9.99}'),
  (8,  '2024-03-02 12:01:00.000000', 'cart-1',  'cart', 'item-added',   '{"sku":"sku-200","qty":1,"price":24.5}'),
  (9,  '2024-03-02 12:05:00.000000', 'cart-1',  'cart', 'item-removed', '{"sku":"sku-100","qty":1}'),
  (10, '2024-03-03 07:20:00.000000', 'user-2',  'user', 'registered',   '{"email":"grace@example.com","name":{"first":"Grace","last":"Hopper"},"age":45}'),
  (11, '2024-03-03 10:00:00.000000', 'order-3', 'shop', 'created',      '{"total":99.99,"items":5,"currency":"USD","customer":{"id":"c-1","tier":"gold"}}'),
  (12, '2024-03-03 10:30:00.000000', 'order-3', 'shop', 'cancelled',    '{"reason":"out of stock","refund":true}'),
  (13, '2024-03-03 15:45:00.000000', 'cart-1',  'cart', 'checked-out',  '{"order":"order-4","total":34.49}'),
  (14, '2024-03-04 09:00:00.000000', 'order-4', 'shop', 'created',      '{"total":34.49,"items":2,"currency":"EUR","customer":{"id":"c-3","tier":"bronze"}}'),
  (15, '2024-03-04 09:10:00.000000', 'order-4', 'shop', 'paid',         '{"method":"card","amount":34.49}'),
  (16, '2024-03-04 14:00:00.000000', 'user-1',  'user', 'renamed',      '{"name":{"first":"Augusta Ada","last":"King"},"previous":"Ada Lovelace"}'),
  (17, '2024-03-05 08:00:00.000000', 'order-2', 'shop', 'shipped',      '{"carrier":"ups","parcels":1}'),
  (18, '2024-03-05 11:11:11.111111', 'user-3',  'user', 'registered',   '{"email":"alan@example.com","name":{"first":"Alan","last":"Turing"},"age":41}'),
  (19, '2024-03-05 16:20:00.000000', 'cart-2',  'cart', 'item-added',   '{"sku":"sku-300","qty":3,"price":5}'),
  (20, '2024-03-06 09:30:00.000000', 'order-4', 'shop', 'shipped',      '{"carrier":"dhl","parcels":2}'),
  (21, '2024-03-06 10:00:00.000000', 'order-5', 'shop', 'created',      '{"total":250,"items":10,"currency":"USD","customer":{"id":"c-2","tier":"silver"}}'),
  (22, '2024-03-06 10:02:00.000000', 'order-5', 'shop', 'paid',         '{"method":"invoice","amount":250}'),
  (23, '2024-03-07 13:00:00.000000', 'cart-2',  'cart', 'item-added',   '{"sku":"sku-100","qty":1,"price":9.99}'),
  (24, '2024-03-07 13:30:00.000000', 'cart-2',  'cart', 'checked-out',  '{"order":"order-6","total":24.99}'),
  (25, '2024-03-08 09:00:00.000000', 'order-6', 'shop', 'created',      '{"total":24.99,"items":4,"currency":"EUR","customer":{"id":"c-3","tier":"bronze"}}'),
  (26, '2024-03-08 18:45:00.000000', 'user-2',  'user', 'deactivated',  '{"reason":"requested","at":"2024-03-08"}'),
  (27, '2024-03-09 10:00:00.000000', 'order-5', 'shop', 'shipped',      '{"carrier":"fedex","parcels":3}'),
  (28, '2024-03-09 12:00:00.000000', 'order-6', 'shop', 'cancelled',    '{"reason":"customer request","refund":false}'),
  (29, '2024-03-10 08:00:00.000000', 'user-3',  'user', 'renamed',      '{"name":{"first":"Alan M.","last":"Turing"},"previous":"Alan Turing"}'),
  (30, '2024-03-10 23:59:59.999999', 'order-1', 'shop', 'delivered',    '{"signed_by":"Ada"}');
