package soak

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisConn is one line of CLIENT LIST.
type redisConn struct {
	id         int64
	port       int
	name       string
	subscriber bool // in pub/sub mode
}

// serverRedisConns lists the server's own Redis connections: those whose
// client port is one of the server's sockets.
func serverRedisConns(ctx context.Context, rdb *redis.Client, srv *serverProc) ([]redisConn, error) {
	ports, err := srv.localPorts()
	if err != nil {
		return nil, err
	}
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("client list: %w", err)
	}
	var out []redisConn
	for line := range strings.SplitSeq(list, "\n") {
		var c redisConn
		for field := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "id":
				c.id, _ = strconv.ParseInt(v, 10, 64)
			case "addr":
				if _, p, err := net.SplitHostPort(v); err == nil {
					c.port, _ = strconv.Atoi(p)
				}
			case "name":
				c.name = v
			case "flags":
				c.subscriber = c.subscriber || strings.Contains(v, "P")
			case "sub", "psub", "ssub":
				c.subscriber = c.subscriber || (v != "" && v != "0")
			}
		}
		if c.id != 0 && ports[c.port] {
			out = append(out, c)
		}
	}
	return out, nil
}

// mysqlConn is one of the server's MariaDB connections.
type mysqlConn struct {
	id      int64
	command string
	info    string
}

// serverMySQLConns lists the connections whose default database is the
// soak's: the server's. The soak's own connection names no database.
func serverMySQLConns(ctx context.Context, db *sql.DB, database string) ([]mysqlConn, error) {
	rows, err := db.QueryContext(ctx, "SELECT ID, COMMAND, COALESCE(INFO, '') FROM information_schema.PROCESSLIST WHERE DB = ?", database)
	if err != nil {
		return nil, fmt.Errorf("processlist: %w", err)
	}
	defer rows.Close()
	var out []mysqlConn
	for rows.Next() {
		var c mysqlConn
		if err := rows.Scan(&c.id, &c.command, &c.info); err != nil {
			return nil, fmt.Errorf("processlist: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("processlist: %w", err)
	}
	return out, nil
}
