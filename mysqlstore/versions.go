package mysqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// What safe writes add to an event table of this product's schema: an
// event id stored once for ever (VARBINARY: compared byte for byte, with no
// trailing-space padding), each event's version in its stream, and a table
// of every stream's current version that a trigger keeps.
const (
	EventIDColumn = "eventId"
	VersionColumn = "version"
	// streamTableSuffix names the table of stream versions beside the
	// event table: event_stream for event.
	streamTableSuffix = "_stream"
	// versionTriggerSuffix names the trigger that numbers every insert.
	versionTriggerSuffix = "_version"
)

// ConflictSignal starts the message of the error the version trigger
// raises when an insert expected another version of its stream.
const ConflictSignal = "eventsource conflict: stream version is "

// versionTrigger numbers each event in its stream, (domain, pid) as the
// table's collation compares them, so that WHERE domain = ? AND pid = ?
// reads exactly the stream's events. The stream's row is locked by the
// upsert: concurrent appends to one stream take turns, others do not wait.
// A stream met for the first time counts the events it already has (stored
// before the trigger existed). An insert that names its version expects
// exactly that one: any other is refused with ConflictSignal, which undoes
// the whole statement, its earlier rows included.
const versionTrigger = "CREATE TRIGGER `{{db}}`.`{{trigger}}` BEFORE INSERT ON `{{db}}`.`{{table}}` FOR EACH ROW\n" +
	"BEGIN\n" +
	"  DECLARE current BIGINT;\n" +
	"  INSERT INTO `{{db}}`.`{{streams}}` (`domain`, `pid`, `version`) VALUES (NEW.`domain`, NEW.`pid`, -1)\n" +
	"    ON DUPLICATE KEY UPDATE `version` = `version` + 1;\n" +
	"  SELECT `version` INTO current FROM `{{db}}`.`{{streams}}` WHERE `domain` = NEW.`domain` AND `pid` = NEW.`pid` FOR UPDATE;\n" +
	"  IF current < 0 THEN\n" +
	"    SELECT COUNT(*) + 1 INTO current FROM `{{db}}`.`{{table}}` WHERE `domain` = NEW.`domain` AND `pid` = NEW.`pid`;\n" +
	"    UPDATE `{{db}}`.`{{streams}}` SET `version` = current WHERE `domain` = NEW.`domain` AND `pid` = NEW.`pid`;\n" +
	"  END IF;\n" +
	"  IF NEW.`version` IS NOT NULL AND NEW.`version` <> current THEN\n" +
	"    SET @eventsource_conflict = CONCAT('" + ConflictSignal + "', current - 1);\n" +
	"    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @eventsource_conflict;\n" +
	"  END IF;\n" +
	"  SET NEW.`version` = current;\n" +
	"END"

// addSafeWrites brings an event table with the id key up to the schema of
// safe writes: the eventId and version columns (INVISIBLE, so that SELECT *
// returns what it returned before), the unique key on eventId, the stream
// table, the trigger, and the versions of the events stored before. A table
// of the original schema (no id) is left as it is: it works without them.
func addSafeWrites(ctx context.Context, db *sql.DB, database, table string) ([]string, error) {
	columns, err := columnCollations(ctx, db, database, table)
	if err != nil {
		return nil, err
	}
	if _, ok := columns["id"]; !ok {
		return nil, nil
	}
	qualified := "`" + database + "`.`" + table + "`"
	var changes []string
	if _, ok := columns[strings.ToLower(EventIDColumn)]; !ok {
		// Appending nullable columns is instant; the unique key is built
		// online (reads and writes go on), in a time that grows with the
		// table.
		stmt := "ALTER TABLE " + qualified + " ADD COLUMN `" + EventIDColumn + "` VARBINARY(64) NULL INVISIBLE," +
			" ADD COLUMN `" + VersionColumn + "` BIGINT NULL INVISIBLE," +
			" ADD UNIQUE KEY `" + EventIDColumn + "` (`" + EventIDColumn + "`), ALGORITHM=INPLACE, LOCK=NONE"
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("migrate: add the eventId and version columns to %s: %w", qualified, err)
		}
		changes = append(changes, fmt.Sprintf("%s.%s: eventId (unique) and version columns added", database, table))
	}
	streams := table + streamTableSuffix
	// The stream table compares domain and pid as the event table does.
	stmt := "CREATE TABLE IF NOT EXISTS `" + database + "`.`" + streams + "` (" +
		"`domain` VARCHAR(200) CHARACTER SET utf8mb4 COLLATE " + columns["domain"] + " NOT NULL, " +
		"`pid` VARCHAR(200) CHARACTER SET utf8mb4 COLLATE " + columns["pid"] + " NOT NULL, " +
		"`version` BIGINT NOT NULL, PRIMARY KEY (`domain`, `pid`)) ENGINE=InnoDB"
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return nil, fmt.Errorf("migrate: create %s.%s: %w", database, streams, err)
	}
	trigger := table + versionTriggerSuffix
	var found int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TRIGGERS
		WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?`, database, trigger).Scan(&found); err != nil {
		return nil, fmt.Errorf("migrate: look for trigger %s.%s: %w", database, trigger, err)
	}
	if found == 0 {
		text := strings.NewReplacer("{{db}}", database, "{{table}}", table, "{{streams}}", streams, "{{trigger}}", trigger).Replace(versionTrigger)
		if _, err := db.ExecContext(ctx, text); err != nil {
			return nil, fmt.Errorf("migrate: create trigger %s.%s (it needs the TRIGGER privilege, and with binary logging SUPER or log_bin_trust_function_creators): %w", database, trigger, err)
		}
		changes = append(changes, fmt.Sprintf("%s.%s: versions kept per stream in %s by trigger %s", database, table, streams, trigger))
	}
	numbered, err := numberStoredEvents(ctx, db, qualified, "`"+database+"`.`eventsource_counts`", columns)
	if err != nil {
		return nil, err
	}
	if numbered > 0 {
		changes = append(changes, fmt.Sprintf("%s.%s: versions given to %d events stored before", database, table, numbered))
	}
	return changes, nil
}

// numberChunk is how many ids one statement of numberStoredEvents covers:
// it locks only those rows, for a moment, so appends go on meanwhile.
const numberChunk = 20000

// numberStoredEvents gives the events stored before the trigger their
// versions, 1, 2, ... per stream in id order, as the trigger counted them.
// It goes through the ids a range at a time, keeping each stream's count
// so far in a temporary table: an event's version is its rank in its
// stream within the range, plus its stream's count before the range.
func numberStoredEvents(ctx context.Context, db *sql.DB, qualified, counts string, columns map[string]string) (int64, error) {
	var low, high sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MIN(`id`), MAX(`id`) FROM "+qualified+" WHERE `"+VersionColumn+"` IS NULL").Scan(&low, &high); err != nil {
		return 0, fmt.Errorf("migrate: find the events of %s without versions: %w", qualified, err)
	}
	if !low.Valid {
		return 0, nil
	}
	conn, err := db.Conn(ctx) // the temporary table lives on one connection
	if err != nil {
		return 0, fmt.Errorf("migrate: number the events of %s: %w", qualified, err)
	}
	defer conn.Close()
	steps := []string{
		"DROP TEMPORARY TABLE IF EXISTS " + counts,
		"CREATE TEMPORARY TABLE " + counts + " (" +
			"`domain` VARCHAR(200) CHARACTER SET utf8mb4 COLLATE " + columns["domain"] + " NOT NULL, " +
			"`pid` VARCHAR(200) CHARACTER SET utf8mb4 COLLATE " + columns["pid"] + " NOT NULL, " +
			"n BIGINT NOT NULL, PRIMARY KEY (`domain`, `pid`)) ENGINE=InnoDB",
	}
	for _, stmt := range steps {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return 0, fmt.Errorf("migrate: number the events of %s: %w", qualified, err)
		}
	}
	// count adds the events of ids [from, to) to the streams' counts.
	count := "INSERT INTO " + counts + " (`domain`, `pid`, n) SELECT `domain`, `pid`, COUNT(*) FROM " + qualified +
		" WHERE `id` >= ? AND `id` < ? GROUP BY `domain`, `pid` ON DUPLICATE KEY UPDATE n = n + VALUES(n)"
	number := "UPDATE " + qualified + " e JOIN (SELECT `id`, ROW_NUMBER() OVER (PARTITION BY `domain`, `pid` ORDER BY `id`) AS k FROM " + qualified +
		" WHERE `id` >= ? AND `id` < ?) r ON e.`id` = r.`id` LEFT JOIN " + counts + " c ON c.`domain` = e.`domain` AND c.`pid` = e.`pid`" +
		" SET e.`" + VersionColumn + "` = r.k + COALESCE(c.n, 0) WHERE e.`" + VersionColumn + "` IS NULL"
	// What a run stopped halfway numbered already counts.
	if _, err := conn.ExecContext(ctx, count, 0, low.Int64); err != nil {
		return 0, fmt.Errorf("migrate: count the numbered events of %s: %w", qualified, err)
	}
	var numbered int64
	for from := low.Int64; from <= high.Int64; from += numberChunk {
		to := from + numberChunk
		res, err := conn.ExecContext(ctx, number, from, to)
		if err != nil {
			return numbered, fmt.Errorf("migrate: number the events of %s with ids from %d: %w", qualified, from, err)
		}
		n, _ := res.RowsAffected()
		numbered += n
		if _, err := conn.ExecContext(ctx, count, from, to); err != nil {
			return numbered, fmt.Errorf("migrate: count the events of %s with ids from %d: %w", qualified, from, err)
		}
	}
	return numbered, nil
}

// columnCollations reads a table's columns, lower-cased, with their
// collations ("" for columns without one); none if it does not exist.
func columnCollations(ctx context.Context, db *sql.DB, database, table string) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT LOWER(COLUMN_NAME), COALESCE(COLLATION_NAME, '') FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, database, table)
	if err != nil {
		return nil, fmt.Errorf("migrate: read the columns of %s.%s: %w", database, table, err)
	}
	defer rows.Close()
	columns := map[string]string{}
	for rows.Next() {
		var name, collation string
		if err := rows.Scan(&name, &collation); err != nil {
			return nil, fmt.Errorf("migrate: read the columns of %s.%s: %w", database, table, err)
		}
		columns[name] = collation
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read the columns of %s.%s: %w", database, table, err)
	}
	for _, c := range []string{"domain", "pid"} {
		if _, ok := columns[c]; ok && !identifier.MatchString(columns[c]) {
			return nil, fmt.Errorf("migrate: %s.%s.%s has collation %q, not a plain name", database, table, c, columns[c])
		}
	}
	return columns, nil
}
