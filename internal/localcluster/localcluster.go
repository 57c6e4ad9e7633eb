// Package localcluster starts Redis servers of its own, for the tests and
// the bench: a Redis Cluster (Start) or one standalone server to kill and
// restart (StartServer), redis-server on free ports of this machine, in a
// temporary directory, with nothing on disk, stopped by Stop. It never
// touches the Redis on the default port.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a running cluster.
type Cluster struct {
	// Addrs are the masters, 127.0.0.1:port.
	Addrs []string
	dir   string
	procs []*exec.Cmd
}

// Start starts masters redis-server processes and joins them into one
// cluster, and waits until every node says the cluster is ok.
func Start(masters int) (*Cluster, error) {
	for _, tool := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("localcluster: %s is not installed (scripts/services.sh installs Redis): %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp("", "eventsource-cluster-")
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	c := &Cluster{dir: dir}
	ports, err := freePorts(masters)
	if err != nil {
		c.Stop()
		return nil, err
	}
	for _, port := range ports {
		p := strconv.Itoa(port)
		nodeDir := filepath.Join(dir, p)
		if err := os.Mkdir(nodeDir, 0o755); err != nil {
			c.Stop()
			return nil, fmt.Errorf("localcluster: %w", err)
		}
		cmd := exec.Command("redis-server", "--port", p, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
			"--dir", nodeDir, "--logfile", filepath.Join(nodeDir, "redis.log"))
		if err := cmd.Start(); err != nil {
			c.Stop()
			return nil, fmt.Errorf("localcluster: start redis-server on %s: %w", p, err)
		}
		c.procs = append(c.procs, cmd)
		c.Addrs = append(c.Addrs, "127.0.0.1:"+p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, addr := range c.Addrs {
		if err := waitPing(ctx, addr); err != nil {
			c.Stop()
			return nil, err
		}
	}
	create := exec.CommandContext(ctx, "redis-cli", append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("localcluster: redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, addr := range c.Addrs {
		if err := waitClusterOK(ctx, addr); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// Stop ends the nodes and removes their directory.
func (c *Cluster) Stop() {
	for _, p := range c.procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	_ = os.RemoveAll(c.dir)
}

// freePorts finds n ports free now whose cluster bus ports (port + 10000)
// are free too.
func freePorts(n int) ([]int, error) {
	var ports []int
	for attempts := 0; len(ports) < n && attempts < 200; attempts++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("localcluster: find a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		_ = bus.Close()
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, errors.New("localcluster: no free ports")
	}
	return ports, nil
}

func waitPing(ctx context.Context, addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for {
		if err := rdb.Ping(ctx).Err(); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("localcluster: redis-server on %s does not answer: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitClusterOK(ctx context.Context, addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for {
		info, err := rdb.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("localcluster: node %s never said cluster_state:ok: %v %q", addr, err, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FreePort finds a TCP port free now on 127.0.0.1, for a server a test
// starts on a port of its own.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
