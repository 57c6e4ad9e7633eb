package main

import (
	"context"
	"fmt"
	"io"

	"github.com/eventsource/eventsource/mysqlstore"
)

func init() {
	register("migrate", "create the database and the event table (idempotent)", runMigrate)
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := configFromEnv(stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("migrate", "[flags]", stderr)
	database := fs.String("database", cfg.MySQL.Database, "database to create the event table in (MYSQL_DATABASE)")
	serveUser := bindServeUser(fs) // grants.go
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Connect to no database: migrate creates it.
	storeCfg := cfg.MySQL.StoreConfig()
	storeCfg.Database, storeCfg.PoolSize = "", 1
	db, err := mysqlstore.Open(storeCfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// Say how the live tables differ from the schema before changing
	// them, and check afterwards that what Migrate should change did.
	before, err := mysqlstore.Compare(ctx, db, *database)
	if err != nil {
		return err
	}
	fresh := len(before) == 1 && before[0].Table == "event" && before[0].Missing()
	if !fresh { // a new table is created as it should be: nothing to say
		for _, d := range before {
			fmt.Fprintln(stdout, "differs:", d)
		}
	}
	changes, err := mysqlstore.Migrate(ctx, db, *database)
	if err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, "changed:", c)
	}
	after, err := mysqlstore.Compare(ctx, db, *database)
	if err != nil {
		return err
	}
	said := map[string]bool{}
	for _, d := range before {
		said[d.String()] = !fresh && !d.Changes
	}
	var missed int
	for _, d := range after {
		if d.Changes {
			missed++
		}
		if !said[d.String()] {
			fmt.Fprintln(stdout, "still differs:", d)
		}
	}
	if missed > 0 {
		return fmt.Errorf("migrate %s: %d differences it should have changed remain", *database, missed)
	}
	fmt.Fprintf(stdout, "migrated %s.event\n", *database)
	fmt.Fprint(stdout, serveGrants(*database, *serveUser))
	return nil
}
