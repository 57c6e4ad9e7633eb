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
	changes, err := mysqlstore.Migrate(ctx, db, *database)
	if err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, "changed:", c)
	}
	fmt.Fprintf(stdout, "migrated %s.event\n", *database)
	return nil
}
